//! `copydesk-ingress-process`: the `copydesk-ingress` binary built inside the test package, so
//! end-to-end tests can run the ingress as a real process via
//! `CARGO_BIN_EXE_copydesk-ingress-process` (cargo exposes binaries of the test's own package
//! only). Same configuration, same behaviour.

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
