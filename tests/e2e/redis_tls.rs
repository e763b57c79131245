//! `rediss://`: the fleet on a Redis that speaks TLS only, with a private CA
//! (`REDIS_CA_FILE`), and the clear errors of a client that cannot talk to it.

use std::time::Duration;

use copydesk::approvals::ApprovalStatus;
use copydesk::config::RedisConfig;
use copydesk::queue::QueueClient;
use copydesk_testkit::pipeline::PipelineOptions;
use copydesk_testkit::process::refused_start;
use copydesk_testkit::redis_server::RedisServer;
use copydesk_testkit::testbed::init_test_tracing;
use copydesk_testkit::wait::wait_until_async;

const WAIT: Duration = Duration::from_secs(60);
/// Far longer than a refused connection takes; only a hang reaches it.
const NO_HANG: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fleet_drafts_a_note_over_rediss_with_a_private_ca() {
    let p = PipelineOptions::default().tls_redis().start().await;
    assert!(
        p.env["REDIS_URL"].starts_with("rediss://"),
        "{}",
        p.env["REDIS_URL"]
    );
    assert!(p.env.contains_key("REDIS_CA_FILE"));

    // The ingress enqueues a signed webhook over TLS…
    let message = p.chatwoot.incoming_messages(101)[0].clone();
    let payload = p
        .chatwoot
        .message_created_webhook(101, message.id)
        .expect("the seed message has a webhook");
    let response = p.ingress.post_webhook(&payload).await;
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.expect("a JSON answer");
    assert_eq!(body["status"], "queued", "{body}");

    // …and every worker role claims, runs and acks its job over TLS: the note is posted.
    let id = p.approval_id(101, message.id);
    let item = p
        .wait_for_note(&id, WAIT)
        .await
        .unwrap_or_else(|| panic!("approval {id} with a posted note over rediss://"));
    assert_eq!(item.status, ApprovalStatus::Pending);
    assert_eq!(p.chatwoot.private_notes(101).len(), 1);
    // Every job was acked: nothing waits, runs or died on any queue.
    wait_until_async("every queue empty over rediss://", WAIT, || async {
        let mut idle = true;
        for name in copydesk::jobs::ALL_QUEUES {
            let depth = p.queue.depth(name).await.expect("queue depth over TLS");
            idle &= depth.pending + depth.running + depth.scheduled + depth.dead == 0;
        }
        idle
    })
    .await;
}

fn plain_config(url: String) -> RedisConfig {
    RedisConfig {
        url,
        key_prefix: "t-tls-plain".into(),
        retention: copydesk::retention::DEFAULT_RETENTION,
        ca_file: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_redis_url_on_the_tls_port_fails_at_once_with_a_hint() {
    init_test_tracing();
    let redis = RedisServer::start_tls();

    // The queue client: an error, not a hang.
    let queue = QueueClient::build(&plain_config(redis.plain_url()))
        .await
        .expect("the client builds lazily");
    let outcome = tokio::time::timeout(NO_HANG, queue.ping()).await;
    assert!(
        matches!(outcome, Ok(Err(_))),
        "a plain client on a TLS port is refused, not left waiting: {outcome:?}"
    );

    // A worker process exits with an error that says what to change.
    let plain = redis.plain_url();
    let (status, stderr) = refused_start(
        env!("CARGO_BIN_EXE_copydesk-fleet"),
        "notes",
        &[
            ("REDIS_URL", &plain),
            ("COPYDESK_KEY_PREFIX", "t-tls-plain"),
        ],
        NO_HANG,
    )
    .await;
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("does not answer") && stderr.contains("rediss://"),
        "the error names the fix: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rediss_url_needs_the_servers_ca() {
    init_test_tracing();
    let redis = RedisServer::start_tls();
    let other = RedisServer::start_tls();

    // Another CA: the server's certificate is refused.
    let wrong_ca = RedisConfig {
        ca_file: other.ca_file(),
        ..redis.redis_config("t-tls-ca")
    };
    let queue = QueueClient::build(&wrong_ca).await.expect("builds lazily");
    let outcome = tokio::time::timeout(NO_HANG, queue.ping()).await;
    let error = match outcome {
        Ok(Err(error)) => error.to_string(),
        other => panic!("a certificate from an unknown CA is refused: {other:?}"),
    };
    assert!(
        error.to_lowercase().contains("certificate"),
        "the error says why: {error}"
    );

    // The right CA: it answers.
    let queue = QueueClient::build(&redis.redis_config("t-tls-ca"))
        .await
        .expect("builds");
    queue.ping().await.expect("PING over TLS with the test CA");

    // A CA file on a plain URL, or a file that is not a certificate: a config error that
    // names REDIS_CA_FILE.
    let plain_with_ca = RedisConfig {
        url: redis.plain_url(),
        ..redis.redis_config("t-tls-ca")
    };
    let error = plain_with_ca.client().expect_err("a CA needs rediss://");
    assert!(error.to_string().contains("REDIS_CA_FILE"), "{error}");
    let not_pem = redis
        .ca_file()
        .expect("a TLS server has a CA")
        .with_extension("txt");
    std::fs::write(&not_pem, "not a certificate").expect("write");
    let bad_file = RedisConfig {
        ca_file: Some(not_pem),
        ..redis.redis_config("t-tls-ca")
    };
    let error = bad_file.client().expect_err("not a PEM certificate");
    assert!(error.to_string().contains("REDIS_CA_FILE"), "{error}");
}
