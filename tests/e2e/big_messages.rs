//! Work that cannot pin a worker (issue 12 §4): a 150 000-character customer message (the
//! most Chatwoot accepts) of distinct words is drafted on its first attempt, within the job
//! deadline, and another conversation written to meanwhile is drafted too.

use std::time::Duration;

use copydesk::queue::{DeadLetterFilter, DeadLetters};
use copydesk_testkit::fake_chatwoot::seed::DEMO_WEB_INBOX;
use copydesk_testkit::fake_chatwoot::FakeConversation;
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};

/// The job deadline of this test's workers (generous: the machine is shared and loaded).
const DEADLINE_MS: i64 = 30_000;
const WAIT: Duration = Duration::from_secs(120);

/// `n` as letters only (`a`, `b`, … `ba`, …), so every word is a distinct term.
fn word(mut n: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    letters.reverse();
    format!("q{}", String::from_utf8_lossy(&letters))
}

/// 150 000 characters of distinct words, starting with a real question.
fn huge_message() -> String {
    let mut text = String::from("Which hose fits an AN-8 fitting? ");
    let mut n = 0;
    while text.len() < 150_000 {
        text.push_str(&word(n));
        text.push(' ');
        n += 1;
    }
    text.truncate(150_000);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_150k_character_message_drafts_within_the_deadline_beside_another_conversation() {
    let p = Pipeline::start(PipelineOptions {
        env: [(
            "COPYDESK_JOB_DEADLINE_MS".to_owned(),
            DEADLINE_MS.to_string(),
        )]
        .into(),
        ..PipelineOptions::default()
    })
    .await
    .expect("pipeline");
    p.chatwoot
        .add_conversation(FakeConversation::new(40_000, DEMO_WEB_INBOX, 11));
    let text = huge_message();
    assert_eq!(text.chars().count(), 150_000);
    let (big_message, status) = p.customer_writes(40_000, &text).await;
    assert_eq!(status, 202);
    // Another customer writes right after, in another conversation.
    let small = p.chatwoot.incoming_messages(101)[0].clone();
    assert_eq!(p.deliver_message_webhook(101, small.id).await, 202);

    let small_item = p
        .wait_for_note(&p.approval_id(101, small.id), WAIT)
        .await
        .expect("the other conversation is drafted");
    let big_item = p
        .wait_for_note(&p.approval_id(40_000, big_message), WAIT)
        .await
        .expect("the huge message is drafted");
    let letters = DeadLetters::new(&p.queue)
        .list(&DeadLetterFilter::default())
        .await
        .expect("dead letters");
    assert!(letters.is_empty(), "no job failed for good: {letters:?}");
    let took =
        |item: &copydesk::approvals::ApprovalItem| item.doc.created_at_ms - item.doc.received_at_ms;
    println!(
        "webhook -> draft stored: huge message {} ms, other conversation {} ms",
        took(&big_item),
        took(&small_item)
    );
    assert!(
        took(&big_item) < DEADLINE_MS,
        "the huge message was drafted within one job deadline ({} ms)",
        took(&big_item)
    );
    assert!(!big_item.doc.draft.is_empty());
}
