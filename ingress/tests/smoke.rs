//! Smoke test of the real `copydesk-ingress` binary: it boots from env config, reports ready,
//! and exits 0 soon after SIGTERM; without its secrets it refuses to start and says why.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use copydesk_testkit::redis_server::free_port;
use copydesk_testkit::RedisServer;

const BINARY: &str = env!("CARGO_BIN_EXE_copydesk-ingress");

fn wait_for_exit(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().expect("try_wait works") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test]
async fn binary_becomes_ready_and_exits_0_within_5_s_of_sigterm() {
    // Arrange
    let redis = RedisServer::start();
    let port = free_port();
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("COPYDESK_KEY_PREFIX", "smoke")
        .env("COPYDESK_WEBHOOK_SECRETS", "smoke-secret")
        .env("COPYDESK_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let http = reqwest::Client::new();
    let readyz = format!("http://127.0.0.1:{port}/readyz");

    // Act: wait until it answers /readyz 200.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = http.get(&readyz).send().await {
            if response.status() == 200 {
                break;
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the ingress did not become ready within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = wait_for_exit(&mut child, Duration::from_secs(5));

    // Assert
    if status.is_none() {
        let _ = child.kill();
    }
    let status = status.expect("the ingress exits within 5 s of SIGTERM");
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
