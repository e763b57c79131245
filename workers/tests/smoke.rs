//! Smoke test of every real role binary (`copydesk-knowledge`, `copydesk-drafter`, …), like
//! the ingress's: each boots from its environment against a test Redis (and the fake
//! Chatwoot), answers `/readyz` 200 on its metrics listener, and exits 0 on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use copydesk_testkit::fake_chatwoot::{FakeChatwoot, Seed};
use copydesk_testkit::pipeline::{demo_routing_file, sample_knowledge_dir};
use copydesk_testkit::process::{ready_then_sigterm, test_log_stderr};
use copydesk_testkit::redis_server::free_port;
use copydesk_testkit::RedisServer;
use copydesk_workers::runtime::Role;

/// Every role binary of this package (`[[bin]]` files in `src/bin/`), with its path.
const BINARIES: [(&str, &str); 7] = [
    (
        "copydesk-knowledge",
        env!("CARGO_BIN_EXE_copydesk-knowledge"),
    ),
    ("copydesk-drafter", env!("CARGO_BIN_EXE_copydesk-drafter")),
    ("copydesk-notes", env!("CARGO_BIN_EXE_copydesk-notes")),
    ("copydesk-assigner", env!("CARGO_BIN_EXE_copydesk-assigner")),
    (
        "copydesk-lifecycle",
        env!("CARGO_BIN_EXE_copydesk-lifecycle"),
    ),
    (
        "copydesk-deadletter",
        env!("CARGO_BIN_EXE_copydesk-deadletter"),
    ),
    (
        "copydesk-reconciler",
        env!("CARGO_BIN_EXE_copydesk-reconciler"),
    ),
];

#[test]
fn the_smoke_test_covers_every_role() {
    let mut covered: Vec<String> = BINARIES
        .iter()
        .map(|(name, _)| name.trim_start_matches("copydesk-").to_owned())
        .collect();
    let mut roles: Vec<String> = Role::all().iter().map(|r| r.name().to_owned()).collect();
    covered.sort();
    roles.sort();
    assert_eq!(covered, roles, "one binary per role, each in BINARIES");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_binary_becomes_ready_and_exits_0_on_sigterm() {
    let redis = RedisServer::start();
    let chatwoot = FakeChatwoot::start(Seed::demo()).await;
    for (name, binary) in BINARIES {
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("REDIS_URL", redis.url())
            .env("COPYDESK_KEY_PREFIX", format!("smoke-{name}"))
            .env("COPYDESK_METRICS_LISTEN", format!("127.0.0.1:{port}"))
            .env("CHATWOOT_BASE_URL", chatwoot.base_url())
            .env("CHATWOOT_API_TOKEN", chatwoot.token())
            .env("CHATWOOT_ACCOUNT_ID", chatwoot.account_id().to_string())
            .env("COPYDESK_KNOWLEDGE_DIR", sample_knowledge_dir())
            .env("COPYDESK_ROUTING_FILE", demo_routing_file())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(test_log_stderr());

        let status = ready_then_sigterm(
            &mut command,
            name,
            &format!("http://127.0.0.1:{port}/readyz"),
            Duration::from_secs(30),
            Duration::from_secs(10),
        )
        .await;

        assert!(status.success(), "{name}: exit status {status}");
    }
}
