//! `copydesk-ingress`: parse config (fail fast), init telemetry, build, serve until SIGTERM.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    copydesk_ingress::run_from_env().await
}
