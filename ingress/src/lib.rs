//! Copydesk ingress: takes Chatwoot's signed webhooks and enqueues durable jobs in Redis.
//!
//! Modules, lower ones first (none imports one above it):
//! - [`config`]: [`IngressConfig`], read from the environment once.
//! - [`error`]: [`IngressError`] and its mapping to status codes; [`StartupError`].
//! - [`response`]: JSON response helper.
//! - [`per_address`], [`budget`]: limits per client address; the webhook body budget.
//! - [`server`]: the one accept loop (connection caps, header limits) of every listener.
//! - [`spool`]: the local disk spool that takes webhooks while Redis is unreachable.
//! - [`state`]: [`state::AppState`], what the handlers share.
//! - [`webhook`]: `POST /webhooks/chatwoot` — bounded read, signature, parse, route, enqueue.
//! - [`routes`]: the public listener's `match (method, path)` (`/webhooks/chatwoot`,
//!   `/livez`, `/readyz`) and the metrics listener's (`/metrics`).
//! - [`console`]: the operator console (`/ui/`) on the ops listener, for people.
//! - [`ops`]: the operator ops API (`/api/...`) on its own listener, behind a bearer token.
//! - [`startup`]: [`Application::build`] and [`Application::run_until_stopped`].

pub mod budget;
pub mod config;
pub mod error;
pub mod legacy;
pub mod ops;
pub use ops::console;
pub mod per_address;
pub mod response;
pub mod routes;
pub mod server;
pub mod spool;
pub mod startup;
pub mod state;
pub mod webhook;

pub use config::IngressConfig;
pub use error::{IngressError, StartupError};
pub use startup::{Application, ShutdownOutcome};

/// What the `copydesk-ingress` binary does: read the configuration from the process
/// environment (fail fast), start telemetry, serve until SIGTERM/SIGINT, and report a
/// shutdown that left requests in flight as an error.
pub async fn run_from_env() -> anyhow::Result<()> {
    use anyhow::Context as _;
    let config =
        IngressConfig::from_env(&copydesk::config::ProcessEnv).context("invalid configuration")?;
    // Kept to the end: dropping it flushes the spans still buffered.
    let _traces = copydesk::telemetry::init_service("copydesk-ingress");
    let shutdown = copydesk::shutdown::signal_token();
    let app = Application::build(config)
        .await
        .context("starting the ingress")?;
    match app.run_until_stopped(shutdown).await {
        ShutdownOutcome::Drained => Ok(()),
        ShutdownOutcome::DeadlineExceeded => {
            anyhow::bail!("shutdown deadline passed with requests in flight")
        }
    }
}
