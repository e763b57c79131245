//! A role with a bad setting says so at once, naming the setting, even when Redis is not
//! there: the fleet reads every role's configuration before it asks Redis anything, so the
//! operator fixing a deployment sees the mistake they made, not a connection error first.

use std::time::Duration;

use copydesk_testkit::redis_server::free_port;

/// How long a refusing process may take to exit.
const NO_HANG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_bad_role_setting_is_reported_before_an_unreachable_redis() {
    // Nothing listens on this port.
    let redis_url = format!("redis://127.0.0.1:{}", free_port());
    let cases = [
        ("reconciler", "COPYDESK_RECONCILE_WINDOW_SECS", "99999"),
        ("lifecycle", "COPYDESK_AUTO_CLOSE_AFTER_SECS", "soon"),
        (
            "assigner",
            "COPYDESK_ROUTING_FILE",
            "/nonexistent/routing.toml",
        ),
    ];
    for (role, var, value) in cases {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_copydesk-fleet"))
            .args(["run", "--role", role])
            .env("REDIS_URL", &redis_url)
            .env("CHATWOOT_BASE_URL", "http://127.0.0.1:9")
            .env("CHATWOOT_API_TOKEN", "unused")
            .env("CHATWOOT_ACCOUNT_ID", "1")
            .env(var, value)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the fleet binary starts");
        let output = tokio::time::timeout(NO_HANG, child.wait_with_output())
            .await
            .expect("the role exits instead of waiting for Redis")
            .expect("the role's output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "{role} with {var}={value}: {stderr}"
        );
        assert!(
            stderr.contains(var) && !stderr.contains("does not answer"),
            "{role} with {var}={value} names the setting, not Redis: {stderr}"
        );
    }
}
