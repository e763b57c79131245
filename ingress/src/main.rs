//! `copydesk-ingress`: parse config (fail fast), init telemetry, build, serve until SIGTERM.

use anyhow::Context;
use copydesk::config::ProcessEnv;
use copydesk_ingress::{Application, IngressConfig, ShutdownOutcome};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = IngressConfig::from_env(&ProcessEnv).context("invalid configuration")?;
    copydesk::telemetry::init();
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
