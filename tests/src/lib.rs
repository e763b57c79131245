//! Copydesk's test kit, shared by the end-to-end tests, the load generator and the demo.
//!
//! - [`fake_chatwoot`]: an in-memory Chatwoot over HTTP with fault injection.
//! - [`redis_server`]: a private `redis-server` on a free port.
//! - [`webhook`]: Chatwoot-style signed webhooks and payload builders from the fixtures.
//! - [`ingress_app`]: `spawn_ingress`, the real ingress on a free port for tests.
//! - [`pipeline`]: the whole fleet in one process (ingress, every role) for tests and the demo.
//! - [`eval`]: the draft-quality evaluation over `eval/cases.toml`.

pub mod eval;
pub mod fake_chatwoot;
pub mod ingress_app;
pub mod pipeline;
pub mod redis_server;
pub mod webhook;

pub use redis_server::RedisServer;
