//! Scenarios 2 and 3: the pipeline's own `redis-server` (AOF on, `appendfsync always`) is
//! SIGKILLed under a load of signed webhooks and started again on the same port.
//!
//! - Without a spool, webhooks that arrive while Redis is down are answered 503 (Chatwoot
//!   would not re-deliver them; the test counts only 2xx as accepted): every accepted one is
//!   processed exactly once.
//! - With the ingress's disk spool, the ingress keeps answering 202 through a 10 s outage, and
//!   after Redis returns the spool drains and every message is processed exactly once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use copydesk_ingress::spool::SpoolConfig;
use copydesk_testkit::ingress_app::{spawn_ingress_with, test_config, unique_prefix};
use copydesk_testkit::pipeline::Pipeline;
use copydesk_workers::runtime::Role;

use crate::harness::{
    all_dead_letters, chaos_env, customer_messages, dead_letter_counts, send_paced, start_pipeline,
    statuses, wait_for_notes, wait_until_idle, Message, Summary, Tally, DRAIN_DEADLINE,
};

/// One webhook every 20 ms (50 a second).
const SEND_INTERVAL: Duration = Duration::from_millis(20);

/// Latency of every fake Chatwoot call, so jobs are in flight when Redis goes away.
const CHATWOOT_LATENCY: Duration = Duration::from_millis(40);
/// The workers' visibility timeout (`chaos_env`): a job slower than this was reclaimed.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(2);

/// Kills Redis `after` from `start`, keeps it down for `down`, starts it again (AOF replayed).
async fn outage(p: &mut Pipeline, start: Instant, after: Duration, down: Duration) {
    tokio::time::sleep_until((start + after).into()).await;
    tokio::task::block_in_place(|| p.redis.kill());
    tokio::time::sleep(down).await;
    tokio::task::block_in_place(|| p.redis.restart());
}

/// The roles in-process: every one but the dead-letter re-drive (a dead letter must show).
fn roles() -> Vec<Role> {
    vec![
        Role::KNOWLEDGE,
        Role::DRAFTER,
        Role::NOTES,
        Role::ASSIGNER,
        Role::LIFECYCLE,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_twice_under_load_keeps_every_accepted_webhook_exactly_once() {
    // Arrange
    const MESSAGES: usize = 800;
    let mut summary = Summary::new("redis restart x2");
    let mut p = start_pipeline(roles(), chaos_env(&[]), true).await;
    let messages = customer_messages(&p, MESSAGES);
    p.chatwoot.set_latency(CHATWOOT_LATENCY);

    // Act: 16 s of load; Redis down 2 s at 3 s and again at 9 s.
    let start = Instant::now();
    let load = tokio::spawn({
        let sender = p.ingress.sender.clone();
        let messages = messages.clone();
        async move { send_paced(sender, &messages, SEND_INTERVAL).await }
    });
    outage(
        &mut p,
        start,
        Duration::from_secs(3),
        Duration::from_secs(2),
    )
    .await;
    outage(
        &mut p,
        start,
        Duration::from_secs(9),
        Duration::from_secs(2),
    )
    .await;
    let answers = load.await.expect("the load task does not panic");
    let answered = |accepted: bool| -> Vec<&Message> {
        answers
            .iter()
            .filter(|a| a.accepted() == accepted)
            .map(|a| &messages[a.index])
            .collect()
    };
    let (accepted, rejected) = (answered(true), answered(false));
    let missing = wait_for_notes(&p, accepted.iter().copied(), DRAIN_DEADLINE).await;
    let idle = wait_until_idle(&p, DRAIN_DEADLINE).await;

    // Assert
    summary.sent = messages.len();
    summary.tally = Tally::of(&p, accepted.iter().copied()).await;
    let rejected_tally = Tally::of(&p, rejected.iter().copied()).await;
    let letters = all_dead_letters(&p).await;
    let by_status = statuses(&answers);
    summary.detail("accepted (2xx)", accepted.len());
    summary.detail("answers", format!("{by_status:?}"));
    summary.detail(
        "503s processed anyway",
        rejected_tally.processed + rejected_tally.mismatched.len(),
    );
    summary.detail("latency", summary.tally.latency());
    summary.detail(
        "notes later than the visibility timeout (outage or reclaim)",
        summary.tally.slower_than(VISIBILITY_TIMEOUT),
    );
    summary.detail("dead letters", dead_letter_counts(&letters));
    summary.print();

    assert!(
        by_status.keys().all(|s| s == "202" || s == "503"),
        "webhooks are queued, or refused with 503 while Redis is down: {by_status:?}"
    );
    assert!(
        by_status.contains_key("503"),
        "some webhooks arrived while Redis was down: {by_status:?}"
    );
    assert!(
        missing.is_empty(),
        "{} accepted message(s) without a note after the drain deadline, e.g. {:?}",
        missing.len(),
        missing.first().map(|m| &m.approval_id)
    );
    assert!(idle, "the draft queues drain");
    summary.tally.assert_exactly_once(summary.scenario);
    assert!(
        rejected_tally.duplicated.is_empty(),
        "a 503'd webhook that got through anyway is still processed once: {:?}",
        rejected_tally.duplicated
    );
    assert!(letters.is_empty(), "no dead letters: {letters:?}");
}

/// A spool directory under the system temp dir, removed when the test ends.
struct SpoolDir(PathBuf);

impl SpoolDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(unique_prefix("copydesk-chaos-spool")))
    }

    /// Spool segment files still on disk.
    fn segments(&self) -> usize {
        std::fs::read_dir(&self.0)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("segment-"))
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_ten_seconds_is_bridged_by_the_spool_and_drained_exactly_once() {
    // Arrange: a second ingress, with a spool, on the pipeline's Redis and key prefix; the
    // load goes to it.
    const MESSAGES: usize = 1_000;
    let mut summary = Summary::new("redis down 10 s, spool");
    let mut p = start_pipeline(roles(), chaos_env(&[]), true).await;
    let spool = SpoolDir::new();
    let mut config = test_config(&p.redis.url(), p.queue.keys().prefix());
    config.spool = Some(SpoolConfig::new(&spool.0));
    let ingress = spawn_ingress_with(config).await;
    let messages = customer_messages(&p, MESSAGES);
    p.chatwoot.set_latency(CHATWOOT_LATENCY);

    // Act: 20 s of load; Redis down from 4 s to 14 s.
    let start = Instant::now();
    let load = tokio::spawn({
        let sender = ingress.sender.clone();
        let messages = messages.clone();
        async move { send_paced(sender, &messages, SEND_INTERVAL).await }
    });
    outage(
        &mut p,
        start,
        Duration::from_secs(4),
        Duration::from_secs(10),
    )
    .await;
    let answers = load.await.expect("the load task does not panic");
    let missing = wait_for_notes(&p, &messages, DRAIN_DEADLINE).await;
    let idle = wait_until_idle(&p, DRAIN_DEADLINE).await;
    let until = Instant::now() + DRAIN_DEADLINE;
    while spool.segments() > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    summary.sent = messages.len();
    summary.tally = Tally::of(&p, &messages).await;
    let letters = all_dead_letters(&p).await;
    let by_status = statuses(&answers);
    let spooled = answers
        .iter()
        .filter(|a| a.outcome.as_deref() == Some("spooled"))
        .count();
    summary.detail(
        "accepted (2xx)",
        answers.iter().filter(|a| a.accepted()).count(),
    );
    summary.detail("spooled", spooled);
    summary.detail("latency", summary.tally.latency());
    summary.detail("dead letters", dead_letter_counts(&letters));
    summary.print();

    assert_eq!(
        by_status.get("202").copied(),
        Some(messages.len()),
        "every webhook is answered 202, from Redis or from the spool: {by_status:?}"
    );
    assert!(spooled > 0, "webhooks arrived while Redis was down");
    assert!(
        missing.is_empty(),
        "{} message(s) without a note after the drain deadline, e.g. {:?}",
        missing.len(),
        missing.first().map(|m| &m.approval_id)
    );
    assert!(idle, "the draft queues drain");
    assert_eq!(spool.segments(), 0, "the spool drains completely");
    summary.tally.assert_exactly_once(summary.scenario);
    assert!(letters.is_empty(), "no dead letters: {letters:?}");
    ingress.stop().await;
}
