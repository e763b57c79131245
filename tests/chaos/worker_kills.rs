//! Scenario 1: thousands of customer messages through the whole pipeline while the knowledge,
//! drafter and notes workers (two processes each) are SIGKILLed and restarted at random every
//! 1–2 s. Every message must end with exactly one approval item and exactly one private note.

use std::collections::BTreeMap;
use std::time::Duration;

use copydesk_testkit::fake_chatwoot::{Endpoint, FaultRates};
use copydesk_workers::runtime::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::{
    all_dead_letters, chaos_env, customer_messages, dead_letter_counts, send_paced, start_pipeline,
    statuses, wait_for_notes, wait_until_idle, FleetProcess, Summary, Tally, DRAIN_DEADLINE,
};

/// Customer messages sent (the issue asks for at least 2 000).
const MESSAGES: usize = 2_000;
/// One webhook every 20 ms: 50 a second, so the load lasts about 40 s and the kills land
/// while work is in flight.
const SEND_INTERVAL: Duration = Duration::from_millis(20);
/// SIGKILLs at least (the killing goes on until the load is sent and this many are done).
const MIN_KILLS: usize = 20;
/// Latency of every fake Chatwoot call.
const CHATWOOT_LATENCY: Duration = Duration::from_millis(40);
/// How late a slow note post is answered (the client's timeout is the default 10 s).
const SLOW_NOTE_ANSWER: Duration = Duration::from_millis(800);
/// The workers' visibility timeout (`chaos_env`): a job slower than this was reclaimed.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(2);
/// Seed of the kill schedule, so a failing run can be repeated.
const SEED: u64 = 0xC0FFEE;
/// The processes killed at random: two of each role.
const VICTIMS: [Role; 6] = [
    Role::KNOWLEDGE,
    Role::KNOWLEDGE,
    Role::DRAFTER,
    Role::DRAFTER,
    Role::NOTES,
    Role::NOTES,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_sigkilled_at_random_under_load_lose_and_duplicate_nothing() {
    // Arrange: assigner and lifecycle in-process (not killed); the three draft roles as
    // real processes, two each.
    let mut summary = Summary::new("worker kills");
    let p = start_pipeline(vec![Role::ASSIGNER, Role::LIFECYCLE], chaos_env(&[]), false).await;
    let messages = customer_messages(&p, MESSAGES);
    // Every Chatwoot call takes a little while and a quarter of the note posts are applied
    // at once but answered only 800 ms later, so kills land mid-job, including after Chatwoot
    // stored a note and before the worker stored its id.
    p.chatwoot.set_latency(CHATWOOT_LATENCY);
    p.chatwoot.set_fault_rates(Some(FaultRates {
        seed: SEED,
        server_error: 0.0,
        rate_limited: 0.0,
        slow: 0.25,
        slow_delay: SLOW_NOTE_ANSWER,
        endpoint: Some(Endpoint::CreateMessage),
    }));
    let mut fleet: Vec<FleetProcess> = VICTIMS
        .iter()
        .map(|role| FleetProcess::spawn(*role, &p.env))
        .collect();

    // Act: send the load while killing a random worker process every 1–2 s.
    let load = tokio::spawn({
        let sender = p.ingress.sender.clone();
        let messages = messages.clone();
        async move { send_paced(sender, &messages, SEND_INTERVAL).await }
    });
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut kills: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut total_kills = 0;
    while !load.is_finished() || total_kills < MIN_KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..=2_000))).await;
        let victim = rng.random_range(0..fleet.len());
        let role = fleet[victim].role;
        fleet[victim].kill();
        fleet[victim] = FleetProcess::spawn(role, &p.env);
        *kills.entry(role.name()).or_insert(0) += 1;
        total_kills += 1;
    }
    let answers = load.await.expect("the load task does not panic");
    let missing = wait_for_notes(&p, &messages, DRAIN_DEADLINE).await;
    let idle = wait_until_idle(&p, DRAIN_DEADLINE).await;
    let crashed: Vec<&str> = fleet
        .iter_mut()
        .filter_map(|w| (!w.is_running()).then_some(w.role.name()))
        .collect();

    // Assert
    summary.sent = messages.len();
    summary.tally = Tally::of(&p, &messages).await;
    let letters = all_dead_letters(&p).await;
    // A post whose worker died before the answer was applied but never answered (the fake
    // records a request when it answers): stored notes minus answered posts.
    let answered_posts = p
        .chatwoot
        .requests_to(Endpoint::CreateMessage)
        .iter()
        .filter(|r| r.status == Some(200))
        .count();
    let stored_notes: usize = messages
        .iter()
        .map(|m| p.chatwoot.private_notes(m.conversation_id).len())
        .sum();
    summary.detail("accepted", answers.iter().filter(|a| a.accepted()).count());
    summary.detail(
        "kills",
        format!(
            "{total_kills} ({})",
            kills
                .iter()
                .map(|(role, n)| format!("{role} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    summary.detail(
        "notes applied while their worker died",
        stored_notes.saturating_sub(answered_posts),
    );
    summary.detail("latency", summary.tally.latency());
    summary.detail(
        "notes delayed past the visibility timeout (reclaimed)",
        summary.tally.slower_than(VISIBILITY_TIMEOUT),
    );
    summary.detail("dead letters", dead_letter_counts(&letters));
    summary.print();

    let by_status = statuses(&answers);
    assert_eq!(
        by_status.get("202").copied(),
        Some(messages.len()),
        "every webhook is queued: {by_status:?}"
    );
    assert!(total_kills >= MIN_KILLS);
    for role in [Role::KNOWLEDGE, Role::DRAFTER, Role::NOTES] {
        assert!(
            kills.get(role.name()).copied().unwrap_or(0) > 0,
            "{} was killed at least once: {kills:?}",
            role.name()
        );
    }
    assert!(
        crashed.is_empty(),
        "no worker process exits by itself: {crashed:?}"
    );
    assert!(
        missing.is_empty(),
        "{} message(s) without a note after the drain deadline, e.g. {:?}",
        missing.len(),
        missing.first().map(|m| &m.approval_id)
    );
    assert!(idle, "the draft queues drain");
    summary.tally.assert_exactly_once(summary.scenario);
    assert!(
        letters.is_empty(),
        "nothing is dead-lettered by crashes alone: {letters:?}"
    );
    drop(fleet);
}
