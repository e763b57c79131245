//! Copydesk's test kit, shared by the end-to-end tests, the load generator and the demo.
//!
//! - [`fake_chatwoot`]: an in-memory Chatwoot over HTTP with fault injection.
//! - [`redis_server`]: a private `redis-server` on a free port.
//! - [`webhook`]: Chatwoot-style signed webhooks and payload builders from the fixtures.
//! - [`ingress_app`]: `spawn_ingress`, the real ingress on a free port for tests.
//! - [`pipeline`]: the whole fleet in one process (ingress, every role) for tests and the demo.
//! - [`testbed`]: the common start of a harness: test logging, a private Redis, a prefix.
//! - [`process`]: child processes (worker roles, binaries) killed on drop, signals, exits.
//! - [`wait`]: waiting on an observable condition with a deadline instead of sleeping.
//! - [`eval`]: the draft-quality evaluation over `eval/cases.toml`.

pub mod eval;
pub mod fake_chatwoot;
pub mod fake_upstream;
pub mod ingress_app;
pub mod pipeline;
pub mod process;
pub mod redis_server;
pub mod testbed;
pub mod wait;
pub mod webhook;

pub use redis_server::RedisServer;
