//! A role with a bad setting says so at once, naming the setting, even when Redis is not
//! there: the fleet reads every role's configuration before it asks Redis anything, so the
//! operator fixing a deployment sees the mistake they made, not a connection error first.

use std::time::Duration;

use copydesk_testkit::process::refused_start;
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
        let (status, stderr) = refused_start(
            env!("CARGO_BIN_EXE_copydesk-fleet"),
            role,
            &[("REDIS_URL", &redis_url), (var, value)],
            NO_HANG,
        )
        .await;
        assert!(!status.success(), "{role} with {var}={value}: {stderr}");
        assert!(
            stderr.contains(var) && !stderr.contains("does not answer"),
            "{role} with {var}={value} names the setting, not Redis: {stderr}"
        );
    }
}
