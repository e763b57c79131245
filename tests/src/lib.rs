//! Copydesk's test kit, shared by the end-to-end tests, the load generator and the demo.
//!
//! - [`redis_server`]: a private `redis-server` on a free port.

pub mod redis_server;

pub use redis_server::RedisServer;
