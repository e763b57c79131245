//! `copydesk-ingress-process`: the `copydesk-ingress` binary built inside the test package, so
//! end-to-end tests can run the ingress as a real process via
//! `CARGO_BIN_EXE_copydesk-ingress-process` (cargo exposes binaries of the test's own package
//! only). Same configuration, same behaviour: both call [`copydesk_ingress::run_from_env`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    copydesk_ingress::run_from_env().await
}
