//! Scenario 5: dead letters. With one attempt per `post_note` run and a fast re-drive
//! schedule (first after 1 s, factor 1, 3 rounds, scanned every 100 ms):
//!
//! - a note failing three times is posted by the third automatic re-drive;
//! - a note failing four times is parked with its rounds spent, then replayed by the real
//!   `copydesk dead-letters retry <id>` process and posted once;
//! - a note refused with 404 (permanent) is parked at once and removed by
//!   `copydesk dead-letters purge <id>`.

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use copydesk::jobs::{Job, PostNote};
use copydesk::queue::{DeadLetter, DeadLetterFilter, DeadLetters};
use copydesk_testkit::fake_chatwoot::{Endpoint, Fault};
use copydesk_testkit::pipeline::Pipeline;
use copydesk_workers::runtime::Role;

use crate::harness::{
    chaos_env, customer_messages, start_pipeline, wait_for_notes, Message, Summary, Tally,
    DRAIN_DEADLINE,
};

/// Automatic re-drives before a letter is parked.
const ROUNDS: u32 = 3;

/// Runs `copydesk-fleet dead-letters <args>` against the pipeline's Redis and key prefix.
fn dead_letters_cli(env: &HashMap<String, String>, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_copydesk-fleet"))
        .arg("dead-letters")
        .args(args)
        .env("REDIS_URL", &env["REDIS_URL"])
        .env("COPYDESK_KEY_PREFIX", &env["COPYDESK_KEY_PREFIX"])
        .env("RUST_LOG", "error")
        .output()
        .expect("the copydesk-fleet binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `post_note` dead letter of `message`, once `ready(letter)` holds.
async fn wait_for_letter(
    p: &Pipeline,
    message: &Message,
    ready: impl Fn(&DeadLetter) -> bool,
) -> DeadLetter {
    let until = Instant::now() + DRAIN_DEADLINE;
    loop {
        let letters = DeadLetters::new(&p.queue)
            .list(&DeadLetterFilter {
                queue: Some(PostNote::QUEUE.to_owned()),
                ..DeadLetterFilter::default()
            })
            .await
            .expect("dead letters list");
        if let Some(letter) = letters
            .into_iter()
            .find(|l| l.payload.contains(&message.approval_id) && ready(l))
        {
            return letter;
        }
        assert!(
            Instant::now() < until,
            "a post_note dead letter for {}",
            message.approval_id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The statuses Chatwoot answered to note posts in `message`'s conversation.
fn note_post_statuses(p: &Pipeline, message: &Message) -> Vec<Option<u16>> {
    let path = format!("/conversations/{}/messages", message.conversation_id);
    p.chatwoot
        .requests_to(Endpoint::CreateMessage)
        .iter()
        .filter(|r| r.path.ends_with(&path))
        .map(|r| r.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_are_redriven_parked_replayed_from_the_cli_and_purged() {
    // Arrange: no assigner, so the notes role is the only one posting messages (the fake's
    // `fail_next_on` rules count every CreateMessage call).
    let mut summary = Summary::new("dead letters");
    let rounds = ROUNDS.to_string();
    let env = chaos_env(&[
        ("COPYDESK_MAX_ATTEMPTS_POST_NOTE", "1"),
        ("COPYDESK_REDRIVE_FIRST_SECS", "1"),
        ("COPYDESK_REDRIVE_FACTOR", "1"),
        ("COPYDESK_REDRIVE_ROUNDS", rounds.as_str()),
        ("COPYDESK_REDRIVE_TICK_MS", "100"),
    ]);
    let roles = vec![
        Role::KNOWLEDGE,
        Role::DRAFTER,
        Role::NOTES,
        Role::DEADLETTER,
    ];
    let p = start_pipeline(roles, env, false).await;
    let messages = customer_messages(&p, 3);
    let (redriven, parked, purged) = (&messages[0], &messages[1], &messages[2]);

    // Act 1: fails on the first run and on re-drives 1 and 2; re-drive 3 posts it.
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, ROUNDS, Fault::Status(500));
    assert_eq!(
        p.ingress.post_webhook(&redriven.payload).await.status(),
        202
    );
    let missing = wait_for_notes(&p, [redriven], DRAIN_DEADLINE).await;

    // Assert 1
    assert!(missing.is_empty(), "the third re-drive posts the note");
    assert_eq!(
        note_post_statuses(&p, redriven),
        [Some(500), Some(500), Some(500), Some(200)],
        "one run and three re-drives, the last one succeeding"
    );

    // Act 2: fails on the first run and on all three re-drives: parked with its rounds spent.
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, ROUNDS + 1, Fault::Status(500));
    assert_eq!(p.ingress.post_webhook(&parked.payload).await.status(), 202);
    let letter = wait_for_letter(&p, parked, |l| l.redrives == ROUNDS).await;
    // Parked: the re-driver leaves it alone (it would have re-driven it within 1.2 s).
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let listed = dead_letters_cli(&p.env, &["list", "--queue", PostNote::QUEUE]);
    let retried = dead_letters_cli(&p.env, &["retry", &letter.id]);
    let missing = wait_for_notes(&p, [parked], DRAIN_DEADLINE).await;

    // Assert 2
    assert!(
        !letter.permanent,
        "5xx is transient: parked for rounds spent"
    );
    assert!(listed.status.success(), "{listed:?}");
    let listing = stdout(&listed);
    assert!(
        listing.contains(&letter.id) && listing.contains(&format!("redrives={ROUNDS}")),
        "still parked after its rounds: {listing}"
    );
    assert!(retried.status.success(), "{retried:?}");
    assert!(stdout(&retried).contains(&format!("re-queued {}", letter.id)));
    assert!(missing.is_empty(), "the replay from the CLI posts the note");
    assert_eq!(
        note_post_statuses(&p, parked),
        [Some(500), Some(500), Some(500), Some(500), Some(200)],
        "one run, three re-drives, then the operator's replay"
    );

    // Act 3: a 404 is permanent: parked at once, then purged by the CLI.
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 1, Fault::Status(404));
    assert_eq!(p.ingress.post_webhook(&purged.payload).await.status(), 202);
    let letter = wait_for_letter(&p, purged, |l| l.permanent).await;
    let purge = dead_letters_cli(&p.env, &["purge", &letter.id]);
    let show = dead_letters_cli(&p.env, &["show", &letter.id]);

    // Assert 3
    assert_eq!(letter.attempts, 1, "no retry burnt on a 404");
    assert_eq!(letter.redrives, 0, "a permanent failure is not re-driven");
    assert!(purge.status.success(), "{purge:?}");
    assert!(stdout(&purge).contains(&format!("purged {}", letter.id)));
    assert!(
        !show.status.success(),
        "the purged letter is gone: {show:?}"
    );
    let store = DeadLetters::new(&p.queue);
    assert_eq!(store.get(&letter.id).await.expect("get"), None);
    assert_eq!(store.count().await.expect("count"), 0);
    assert_eq!(note_post_statuses(&p, purged), [Some(404)]);
    let item = p
        .approvals
        .get(&purged.approval_id)
        .await
        .expect("get")
        .expect("the approval item stays usable without its note");
    assert_eq!(item.note_id, None);

    summary.sent = messages.len();
    summary.tally = Tally::of(&p, [redriven, parked]).await;
    summary.detail("posted by the 3rd re-drive", 1);
    summary.detail("parked after 3 re-drives then CLI retry", 1);
    summary.detail("purged by CLI (no note, as asked)", 1);
    summary.detail("dead letters left", store.count().await.expect("count"));
    summary.print();
    summary.tally.assert_exactly_once(summary.scenario);
}
