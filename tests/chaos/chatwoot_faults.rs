//! Scenario 4: Chatwoot fails 20 % of calls with 500, 5 % with 429 (no `Retry-After`) and
//! answers 5 % only after the client's timeout (the call was applied: an ambiguous failure).
//! Every note must still be posted exactly once, and only permanent errors may be parked.

use std::time::{Duration, Instant};

use copydesk::queue::DeadLetter;
use copydesk_testkit::fake_chatwoot::{Endpoint, Fault, FaultRates};

use crate::harness::{
    all_dead_letters, chaos_env, customer_messages, dead_letter_counts, send_paced, start_pipeline,
    statuses, wait_for_notes, wait_until_idle, Summary, Tally, DRAIN_DEADLINE,
};

/// Customer messages sent.
const MESSAGES: usize = 500;
/// One webhook every 20 ms.
const SEND_INTERVAL: Duration = Duration::from_millis(20);
/// The Chatwoot client's whole-request timeout (`CHATWOOT_TIMEOUT_MS`).
const CLIENT_TIMEOUT_MS: &str = "300";
/// Slow answers come after this: well past the client's timeout.
const SLOW_DELAY: Duration = Duration::from_millis(1_000);
/// The first note posts are all slow (applied, answered after the client gave up), on top of
/// the random 5 %, so the ambiguous path is certainly taken.
const AMBIGUOUS_POSTS: u32 = 20;
/// Automatic re-drive rounds of a dead letter (first after 1 s, then every 1 s).
const REDRIVE_ROUNDS: &str = "5";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chatwoot_failing_a_third_of_calls_still_gets_every_note_posted_exactly_once() {
    // Arrange: every role in-process, including the dead-letter re-drive on a fast schedule
    // (retries spent on transient errors are re-driven, not lost).
    let mut summary = Summary::new("chatwoot faults");
    let env = chaos_env(&[
        ("CHATWOOT_TIMEOUT_MS", CLIENT_TIMEOUT_MS),
        ("COPYDESK_REDRIVE_FIRST_SECS", "1"),
        ("COPYDESK_REDRIVE_FACTOR", "1"),
        ("COPYDESK_REDRIVE_ROUNDS", REDRIVE_ROUNDS),
        ("COPYDESK_REDRIVE_TICK_MS", "100"),
    ]);
    let p = start_pipeline(copydesk_testkit::pipeline::webhook_roles(), env, false).await;
    let messages = customer_messages(&p, MESSAGES);
    p.chatwoot.set_fault_rates(Some(FaultRates {
        seed: 20_05_05,
        server_error: 0.20,
        rate_limited: 0.05,
        slow: 0.05,
        slow_delay: SLOW_DELAY,
        endpoint: None,
    }));
    p.chatwoot.fail_next_on(
        Endpoint::CreateMessage,
        AMBIGUOUS_POSTS,
        Fault::Delay(SLOW_DELAY),
    );

    // Act
    let answers = send_paced(p.ingress.sender.clone(), &messages, SEND_INTERVAL).await;
    let missing = wait_for_notes(&p, &messages, DRAIN_DEADLINE).await;
    let idle = wait_until_idle(&p, DRAIN_DEADLINE).await;
    // Letters of transient failures are re-driven until they succeed or their rounds are
    // spent; wait until only parked ones (permanent, or rounds spent) are left.
    let rounds: u32 = REDRIVE_ROUNDS.parse().expect("a number");
    let parked = |l: &DeadLetter| l.permanent || l.redrives >= rounds;
    let until = Instant::now() + DRAIN_DEADLINE;
    let letters = loop {
        let letters = all_dead_letters(&p).await;
        if letters.iter().all(parked) || Instant::now() >= until {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let requests = p.chatwoot.requests();
    p.chatwoot.set_fault_rates(None);

    // Assert
    summary.sent = messages.len();
    summary.tally = Tally::of(&p, &messages).await;
    let answered = |status: u16| requests.iter().filter(|r| r.status == Some(status)).count();
    summary.detail("chatwoot calls", requests.len());
    summary.detail("answered 500", answered(500));
    summary.detail("answered 429", answered(429));
    summary.detail(
        "slow",
        format!("5 % + first {AMBIGUOUS_POSTS} note posts (timeout {CLIENT_TIMEOUT_MS} ms)"),
    );
    summary.detail("latency", summary.tally.latency());
    summary.detail("dead letters", dead_letter_counts(&letters));
    summary.print();

    let by_status = statuses(&answers);
    assert_eq!(
        by_status.get("202").copied(),
        Some(messages.len()),
        "the ingress never calls Chatwoot: {by_status:?}"
    );
    assert!(
        answered(500) > 0 && answered(429) > 0,
        "faults were injected"
    );
    assert!(
        missing.is_empty(),
        "{} message(s) without a note after the drain deadline, e.g. {:?}",
        missing.len(),
        missing.first().map(|m| &m.approval_id)
    );
    assert!(idle, "the draft queues drain");
    summary.tally.assert_exactly_once(summary.scenario);
    let transient: Vec<&DeadLetter> = letters.iter().filter(|l| !l.permanent).collect();
    assert!(
        transient.is_empty(),
        "transient Chatwoot errors are retried and re-driven, never parked: {transient:?}"
    );
    for letter in &letters {
        println!(
            "  parked (permanent) on {}: {}",
            letter.queue,
            letter.error.lines().next().unwrap_or("")
        );
    }
}
