//! Copydesk ingress: takes Chatwoot's signed webhooks and enqueues durable jobs in Redis.
//!
//! - [`config`]: [`IngressConfig`], read from the environment once.
//! - [`startup`]: [`Application::build`] and [`Application::run_until_stopped`].
//! - [`routes`]: the one `match (method, path)`; `/livez`, `/readyz`, `/metrics`.
//! - [`webhook`]: `POST /webhooks/chatwoot` — bounded read, signature, parse, route, enqueue.
//! - [`ops`]: the operator ops API (`/api/...`) on its own listener, behind a bearer token.
//! - [`console`]: the operator console (`/ui/`) on the ops listener, for people.
//! - [`spool`]: the local disk spool that takes webhooks while Redis is unreachable.
//! - [`error`]: [`IngressError`] and its mapping to status codes.
//! - [`response`]: JSON response helper.

pub mod config;
pub mod console;
pub mod error;
pub mod ops;
pub mod response;
pub mod routes;
pub mod spool;
pub mod startup;
pub mod webhook;

pub use config::IngressConfig;
pub use error::IngressError;
pub use startup::{Application, ShutdownOutcome, StartupError};
