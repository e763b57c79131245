//! Smoke test of the real `copydesk-ingress` binary: it boots from env config, reports ready,
//! and exits 0 soon after SIGTERM; without its secrets it refuses to start and says why.

use std::process::{Command, Stdio};
use std::time::Duration;

use copydesk_testkit::process::ready_then_sigterm;
use copydesk_testkit::redis_server::free_port;
use copydesk_testkit::RedisServer;

const BINARY: &str = env!("CARGO_BIN_EXE_copydesk-ingress");

#[tokio::test]
async fn binary_becomes_ready_and_exits_0_within_5_s_of_sigterm() {
    // Arrange
    let redis = RedisServer::start();
    let port = free_port();
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("COPYDESK_KEY_PREFIX", "smoke")
        .env("COPYDESK_WEBHOOK_SECRETS", "smoke-secret")
        .env("COPYDESK_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());

    // Act: wait until it answers /readyz 200, then SIGTERM.
    let status = ready_then_sigterm(
        &mut command,
        "the ingress",
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(10),
        Duration::from_secs(5),
    )
    .await;

    // Assert
    assert!(status.success(), "exit status {status}");
}

#[test]
fn binary_without_webhook_secrets_exits_nonzero_naming_the_variable() {
    let output = Command::new(BINARY)
        .env_clear()
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .expect("the binary runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("COPYDESK_WEBHOOK_SECRETS"),
        "stderr: {stderr}"
    );
}
