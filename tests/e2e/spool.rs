//! The ingress's disk spool and the Redis eviction-policy check, end to end: each test starts
//! its own `redis-server` (AOF on) and kills/restarts it; each spool lives in its own directory
//! under `target/test-spool/`. (Without a spool directory, a Redis outage is answered 503:
//! `ingress::redis_outage_makes_readyz_and_webhooks_503_until_it_is_back`.)

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use copydesk::queue::{check_eviction_policy, QueueClient, QueueError};
use copydesk_ingress::spool::{SpoolConfig, REJECTED_FILE};
use copydesk_ingress::{Application, StartupError};
use copydesk_testkit::ingress_app::{spawn_ingress_with, test_config, unique_prefix, TestIngress};
use copydesk_testkit::webhook::{self, new_delivery_id};
use copydesk_testkit::RedisServer;
use futures::StreamExt;
use serde_json::Value;

/// Generous: the drain retries at most every 2 s, and CI machines are slow.
const DEADLINE: Duration = Duration::from_secs(30);

/// A spool directory of the test's own, removed when the test ends.
struct SpoolDir(PathBuf);

impl SpoolDir {
    fn new(label: &str) -> Self {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        Self(target.join("test-spool").join(unique_prefix(label)))
    }

    fn config(&self) -> SpoolConfig {
        SpoolConfig::new(&self.0)
    }

    /// The segment files, oldest first.
    fn segments(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.0)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("segment-"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    fn bytes(&self) -> u64 {
        self.segments()
            .iter()
            .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum()
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn spawn_with_spool(redis: &RedisServer, prefix: &str, spool: SpoolConfig) -> TestIngress {
    let mut config = test_config(&redis.url(), prefix);
    config.spool = Some(spool);
    spawn_ingress_with(config).await
}

async fn json_body(response: reqwest::Response) -> Value {
    response.json().await.expect("every answer has a JSON body")
}

async fn readyz(app: &TestIngress) -> (u16, Value) {
    let response = app.get("/readyz").await;
    let status = response.status().as_u16();
    (status, json_body(response).await)
}

/// Polls `check` until it returns true, failing with `what` after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `message_id` of every `lookup_knowledge` job, in stream order.
async fn lookup_message_ids(app: &TestIngress) -> Vec<i64> {
    app.queued_jobs("lookup_knowledge")
        .await
        .iter()
        .map(|job| job["message_id"].as_i64().expect("jobs carry a message id"))
        .collect()
}

/// Waits until the ingress has drained its spool and says it is plainly ready.
async fn wait_until_drained(app: &TestIngress, spool: &SpoolDir) {
    eventually("the spool drains and /readyz says ready", || async {
        let (status, body) = readyz(app).await;
        status == 200 && body["status"] == "ready" && spool.segments().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_spooled_while_redis_is_down_and_drained_in_order_exactly_once() {
    // Arrange
    let mut redis = RedisServer::start_durable();
    let spool = SpoolDir::new("spool-outage");
    let app = spawn_with_spool(&redis, &unique_prefix("spool-outage"), spool.config()).await;
    let before = app
        .post_webhook(&webhook::incoming_message(7000, 700, "before"))
        .await;
    assert_eq!(json_body(before).await["status"], "queued");

    // Act: Redis dies; 20 customer messages arrive, one of them twice more (a Chatwoot
    // re-send under a new delivery id, and the same delivery again).
    redis.kill();
    let mut statuses = Vec::new();
    let mut bytes_after_ten = 0;
    let resent = webhook::incoming_message(7005, 700, "message 5");
    let resent_delivery = new_delivery_id();
    for i in 1..=20_i64 {
        let payload = webhook::incoming_message(7000 + i, 700, &format!("message {i}"));
        let response = if i == 5 {
            app.post_webhook_as(&resent, &resent_delivery).await
        } else {
            app.post_webhook(&payload).await
        };
        statuses.push((response.status().as_u16(), json_body(response).await));
        if i == 10 {
            bytes_after_ten = spool.bytes();
        }
    }
    for response in [
        app.post_webhook(&resent).await,
        app.post_webhook_as(&resent, &resent_delivery).await,
    ] {
        statuses.push((response.status().as_u16(), json_body(response).await));
    }
    let (ready_status, ready) = readyz(&app).await;
    let metrics = app.metrics().await;

    // Assert: every answer is 202 spooled, the file grew, readiness says degraded.
    for (status, body) in &statuses {
        assert_eq!(*status, 202, "{body}");
        assert_eq!(body["status"], "spooled", "{body}");
    }
    assert!(
        bytes_after_ten > 0,
        "the spool file exists after ten webhooks"
    );
    assert!(
        spool.bytes() > bytes_after_ten,
        "the spool grows: {} then {}",
        bytes_after_ten,
        spool.bytes()
    );
    assert_eq!(ready_status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["redis"], "down");
    assert_eq!(ready["spool_events"], 22);
    assert!(metrics.contains("copydesk_spool_events"), "{metrics}");
    assert!(
        metrics.contains(r#"copydesk_webhooks_total{event="message_created",outcome="spooled"}"#),
        "{metrics}"
    );

    // Act: Redis is back.
    redis.restart();
    wait_until_drained(&app, &spool).await;
    let after = app
        .post_webhook(&webhook::incoming_message(7100, 700, "after"))
        .await;

    // Assert: in arrival order, once each, re-sends swallowed by the dedupe keys; and the
    // next webhook goes straight to Redis again.
    let expected: Vec<i64> = (7000..=7020).chain([7100]).collect();
    assert_eq!(lookup_message_ids(&app).await, expected);
    assert_eq!(app.queued_jobs("track_conversation").await.len(), 22);
    assert_eq!(json_body(after).await["status"], "queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_from_16_clients_during_an_outage_leaves_exactly_one_job_per_202() {
    // Arrange
    let mut redis = RedisServer::start_durable();
    let spool = SpoolDir::new("spool-burst");
    let app = spawn_with_spool(&redis, &unique_prefix("spool-burst"), spool.config()).await;
    let burst = |first: i64| {
        let sender = app.sender.clone();
        async move {
            let started = Instant::now();
            let statuses: Vec<u16> = futures::stream::iter(first..first + 500)
                .map(|i| {
                    let sender = sender.clone();
                    async move {
                        let payload = webhook::incoming_message(i, 800 + i % 40, "burst");
                        sender
                            .post(&payload)
                            .await
                            .map(|r| r.status().as_u16())
                            .unwrap_or(0)
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            (statuses, started.elapsed())
        }
    };

    // Act: 500 webhooks with Redis up, then 500 with Redis down.
    let (direct, direct_took) = burst(200_000).await;
    redis.kill();
    let (spooled, spooled_took) = burst(300_000).await;
    let spooled_bytes = spool.bytes();
    redis.restart();
    wait_until_drained(&app, &spool).await;

    // Assert
    eprintln!(
        "500 webhooks, 16 clients: direct {:.0}/s, spooled {:.0}/s; spool {} bytes ({} per record)",
        500.0 / direct_took.as_secs_f64(),
        500.0 / spooled_took.as_secs_f64(),
        spooled_bytes,
        spooled_bytes / 500,
    );
    assert!(direct.iter().all(|s| *s == 202), "{direct:?}");
    assert!(spooled.iter().all(|s| *s == 202), "{spooled:?}");
    let ids = lookup_message_ids(&app).await;
    let distinct: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 1000, "one job per 202");
    assert_eq!(distinct.len(), 1000, "no duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_redis_gets_webhooks_spooled_and_each_is_stored_once() {
    // Arrange: Redis holds every write for 4 s (a stall, not a crash): the enqueue that
    // times out is still executed when the pause ends, and then replayed from the spool.
    let redis = RedisServer::start_durable();
    let spool = SpoolDir::new("spool-stall");
    let app = spawn_with_spool(&redis, &unique_prefix("spool-stall"), spool.config()).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(4000)
        .arg("WRITE")
        .query(&mut redis.connection())
        .expect("CLIENT PAUSE works");

    // Act
    let mut statuses = Vec::new();
    for i in 0..3_i64 {
        let response = app
            .post_webhook(&webhook::incoming_message(7600 + i, 760, "stalled"))
            .await;
        statuses.push(json_body(response).await["status"].clone());
    }
    wait_until_drained(&app, &spool).await;

    // Assert
    assert_eq!(statuses, ["spooled", "spooled", "spooled"]);
    assert_eq!(lookup_message_ids(&app).await, vec![7600, 7601, 7602]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_survives_an_ingress_restart_and_is_drained_at_startup() {
    // Arrange: Redis is down while the first ingress spools ten webhooks, then it stops.
    let mut redis = RedisServer::start_durable();
    let spool = SpoolDir::new("spool-restart");
    let prefix = unique_prefix("spool-restart");
    let first = spawn_with_spool(&redis, &prefix, spool.config()).await;
    redis.kill();
    for i in 0..10_i64 {
        let response = first
            .post_webhook(&webhook::incoming_message(7200 + i, 720, "while down"))
            .await;
        assert_eq!(json_body(response).await["status"], "spooled");
    }
    first.stop().await;
    assert!(!spool.segments().is_empty(), "the spool is on disk");

    // Act: Redis is back; a new ingress starts on the same spool directory.
    redis.restart();
    let second = spawn_with_spool(&redis, &prefix, spool.config()).await;
    wait_until_drained(&second, &spool).await;

    // Assert
    let expected: Vec<i64> = (7200..7210).collect();
    assert_eq!(lookup_message_ids(&second).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_record_is_skipped_and_the_records_before_it_are_drained() {
    // Arrange: eleven webhooks spooled, then the last one cut in half, as a crash in the
    // middle of an append leaves it.
    let mut redis = RedisServer::start_durable();
    let spool = SpoolDir::new("spool-torn");
    let prefix = unique_prefix("spool-torn");
    let first = spawn_with_spool(&redis, &prefix, spool.config()).await;
    redis.kill();
    for i in 0..11_i64 {
        let response = first
            .post_webhook(&webhook::incoming_message(7300 + i, 730, "while down"))
            .await;
        assert_eq!(json_body(response).await["status"], "spooled");
    }
    first.stop().await;
    let last = spool.segments().pop().expect("a segment file");
    let content = std::fs::read(&last).expect("the segment is readable");
    let last_line_start = content[..content.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let torn_len = last_line_start + (content.len() - last_line_start) / 2;
    std::fs::write(&last, &content[..torn_len]).expect("the segment is writable");

    // Act
    redis.restart();
    let second = spawn_with_spool(&redis, &prefix, spool.config()).await;
    wait_until_drained(&second, &spool).await;

    // Assert: the ten complete records are in Redis; the torn one is kept aside, not lost
    // silently.
    let expected: Vec<i64> = (7300..7310).collect();
    assert_eq!(lookup_message_ids(&second).await, expected);
    let rejected = std::fs::read(spool.0.join(REJECTED_FILE)).expect("the torn bytes are kept");
    assert_eq!(
        rejected,
        [&content[last_line_start..torn_len], b"\n"].concat()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_redis_keeps_refusing_are_set_aside_so_the_spool_still_drains() {
    // Arrange: two webhooks spooled; when Redis is back, an ACL forbids scripts, so every
    // enqueue is refused (NOPERM), which no retry can fix.
    let mut redis = RedisServer::start_durable();
    let spool = SpoolDir::new("spool-refused");
    let app = spawn_with_spool(&redis, &unique_prefix("spool-refused"), spool.config()).await;
    redis.kill();
    for i in 0..2_i64 {
        let response = app
            .post_webhook(&webhook::incoming_message(7500 + i, 750, "while down"))
            .await;
        assert_eq!(json_body(response).await["status"], "spooled");
    }

    // Act
    redis.restart();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-@scripting")
        .query(&mut redis.connection())
        .expect("ACL SETUSER works");
    wait_until_drained(&app, &spool).await;

    // Assert: nothing was enqueued, nothing is lost: both records are in the rejected file,
    // in the spool's own format (rename it to a segment to replay it).
    assert!(lookup_message_ids(&app).await.is_empty());
    let rejected =
        std::fs::read_to_string(spool.0.join(REJECTED_FILE)).expect("the refused records are kept");
    assert_eq!(rejected.lines().count(), 2, "{rejected}");
    for line in rejected.lines() {
        let record = copydesk_ingress::spool::SpoolRecord::decode(line.as_bytes())
            .expect("a rejected record is a valid spool line");
        assert_eq!(record.jobs[0].queue, "lookup_knowledge");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_answers_503_saying_so_and_readiness_turns_503() {
    // Arrange: room for a few records only.
    let mut redis = RedisServer::start_durable();
    let spool = SpoolDir::new("spool-full");
    let config = SpoolConfig {
        max_bytes: 4096,
        ..spool.config()
    };
    let app = spawn_with_spool(&redis, &unique_prefix("spool-full"), config).await;
    redis.kill();

    // Act: post until the spool refuses.
    let mut spooled: usize = 0;
    let mut refusal = None;
    for i in 0..50_i64 {
        let response = app
            .post_webhook(&webhook::incoming_message(7400 + i, 740, "while down"))
            .await;
        if response.status() == 202 {
            spooled += 1;
        } else {
            refusal = Some((response.status().as_u16(), json_body(response).await));
            break;
        }
    }
    let (ready_status, ready) = readyz(&app).await;

    // Assert
    let (status, body) = refusal.expect("the spool fills up within 50 webhooks");
    assert!(spooled > 0, "some webhooks fit");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "spool_full");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("spool is full")),
        "{body}"
    );
    assert_eq!(ready_status, 503, "{ready}");
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(ready["spool_events"], spooled);

    // And what was spooled still reaches Redis.
    redis.restart();
    wait_until_drained(&app, &spool).await;
    assert_eq!(lookup_message_ids(&app).await.len(), spooled);
}

#[tokio::test]
async fn the_eviction_policy_check_refuses_allkeys_lru_and_accepts_noeviction() {
    // Arrange
    let redis = RedisServer::start();
    let mut config = test_config(&redis.url(), &unique_prefix("eviction"));
    let queue = QueueClient::build(&config.redis)
        .await
        .expect("client builds");
    let set_policy = |policy: &str| {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg(policy)
            .query(&mut redis.connection())
            .expect("CONFIG SET works on the test Redis");
    };

    // Act / Assert: the test Redis runs noeviction.
    check_eviction_policy(&queue)
        .await
        .expect("noeviction is accepted");

    for policy in ["allkeys-lru", "volatile-ttl"] {
        set_policy(policy);
        let error = check_eviction_policy(&queue)
            .await
            .expect_err("evicting policies are refused");
        let message = error.to_string();
        assert!(
            matches!(error, QueueError::EvictionPolicy { .. }),
            "{message}"
        );
        assert!(message.contains("maxmemory-policy noeviction"), "{message}");
        assert!(message.contains(policy), "{message}");
    }

    // The ingress refuses to start on it, unless told to allow it.
    let refused = Application::build(config.clone())
        .await
        .expect_err("the ingress refuses an evicting Redis");
    assert!(
        matches!(refused, StartupError::EvictionPolicy(_)),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("maxmemory-policy"),
        "{refused}"
    );
    config.allow_eviction = true;
    Application::build(config)
        .await
        .expect("COPYDESK_ALLOW_EVICTION lets it start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ingress_cannot_share_a_spool_directory() {
    let redis = RedisServer::start_durable();
    let dir = SpoolDir::new("shared-dir");
    let mut first = test_config(&redis.url(), &unique_prefix("spool-lock-a"));
    first.spool = Some(dir.config());
    let first = spawn_ingress_with(first).await;
    let mut second = test_config(&redis.url(), &unique_prefix("spool-lock-b"));
    second.spool = Some(dir.config());
    let refused = Application::build(second).await;
    let message = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(
        message.contains("COPYDESK_SPOOL_DIR") && message.contains("another copydesk-ingress"),
        "{message}"
    );
    drop(first);
}

/// Issue 12 §7: on shutdown (SIGTERM in the binary), once the requests are done, what the
/// spool holds is drained into Redis when Redis answers: a pod that is replaced leaves no
/// webhook behind on its volume. (Before, the drain task was simply stopped and the records
/// waited on disk for a next start that a deleted pod never has.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_drains_the_spool_into_redis_when_redis_is_back() {
    // Arrange: Redis is down long enough for the drain to back off to its longest wait.
    let mut redis = RedisServer::start_durable();
    let spool = SpoolDir::new("spool-exit");
    let prefix = unique_prefix("spool-exit");
    let app = spawn_with_spool(&redis, &prefix, spool.config()).await;
    redis.kill();
    for i in 0..30_i64 {
        let response = app
            .post_webhook(&webhook::incoming_message(7600 + i, 760, "while down"))
            .await;
        assert_eq!(json_body(response).await["status"], "spooled");
    }
    tokio::time::sleep(copydesk_ingress::spool::DRAIN_RETRY_MAX * 2).await;

    // Act: Redis is back and the ingress is stopped at once.
    redis.restart();
    let outcome = app.stop().await;

    // Assert: nothing is left on disk; every webhook is in Redis, in order.
    assert_eq!(outcome, copydesk_ingress::ShutdownOutcome::Drained);
    assert!(
        spool.segments().is_empty(),
        "the spool is empty: {:?}",
        spool.segments()
    );
    let stream = copydesk::queue::Keys::new(prefix).stream("lookup_knowledge");
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query(&mut redis.connection())
        .expect("XRANGE works");
    let ids: Vec<i64> = entries
        .iter()
        .map(|(_, fields)| {
            let payload = fields
                .chunks(2)
                .find(|pair| pair[0] == "p")
                .map(|pair| pair[1].as_str())
                .expect("every entry has a payload field `p`");
            let payload: Value = serde_json::from_str(payload).expect("a JSON payload");
            payload["message_id"].as_i64().expect("a message id")
        })
        .collect();
    assert_eq!(ids, (7600..7630).collect::<Vec<i64>>());
}
