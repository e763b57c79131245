//! The per-queue job deadline (`COPYDESK_JOB_DEADLINE_MS_<QUEUE>`, issue 12 §4): a draft
//! whose model call hangs is stopped at the deadline, counted as a failed attempt, retried and
//! then dead-lettered per the queue's policy, and the worker, with one job slot, goes on to
//! draft other conversations meanwhile and after.

use std::time::Duration;

use copydesk::jobs::{GenerateDraft, Job};
use copydesk::queue::{DeadLetterFilter, DeadLetters};
use copydesk_testkit::fake_upstream::{FakeUpstream, FAKE_MODEL, STALL_MARKER};
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_testkit::wait::{wait_for, wait_until};

const WAIT: Duration = Duration::from_secs(60);
/// Runs of a failing `generate_draft` before it is dead-lettered, in this test.
const ATTEMPTS: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draft_whose_model_hangs_is_stopped_at_the_deadline_retried_then_dead_lettered() {
    let upstream = FakeUpstream::start().await;
    let p = Pipeline::start(PipelineOptions::default().env(&[
        ("COPYDESK_LLM_URL", &upstream.llm_url()),
        ("COPYDESK_LLM_MODEL", FAKE_MODEL),
        // The model client would wait ten minutes: only the job deadline can stop the call.
        ("COPYDESK_LLM_TIMEOUT_MS", "600000"),
        ("COPYDESK_JOB_DEADLINE_MS_GENERATE_DRAFT", "1000"),
        ("COPYDESK_MAX_ATTEMPTS_GENERATE_DRAFT", "2"),
        // One job at a time per queue: a job that kept running would pin the drafter.
        ("COPYDESK_MAX_IN_FLIGHT", "1"),
    ]))
    .await
    .expect("the pipeline starts");
    let queue = GenerateDraft::QUEUE;

    // Conversation 101's customer writes a message whose model call hangs.
    let (stalled, status) = p
        .customer_writes(101, &format!("Which hose fits AN-6? {STALL_MARKER}"))
        .await;
    assert_eq!(status, 202);
    wait_until("the first attempt is waiting on the model", WAIT, || {
        upstream.stalled_completions() >= 1
    })
    .await;

    // Meanwhile another customer writes: drafted although the only slot held a hung call.
    let other = p.chatwoot.incoming_messages(102)[0].clone();
    assert_eq!(p.deliver_message_webhook(102, other.id).await, 202);
    let item = p
        .wait_for_note(&p.approval_id(102, other.id), WAIT)
        .await
        .expect("the other conversation is drafted while the hung job is retried");
    assert!(!item.doc.draft.is_empty());

    // The hung job: every attempt stopped at the deadline, then dead-lettered.
    let letters = DeadLetters::new(&p.queue);
    let letter = wait_for(format_args!("a dead letter on {queue}"), WAIT, || async {
        letters
            .list(&DeadLetterFilter {
                queue: Some(queue.to_owned()),
                ..DeadLetterFilter::default()
            })
            .await
            .expect("dead letters list")
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(letter.attempts, ATTEMPTS, "{letter:?}");
    assert!(!letter.permanent, "a deadline is a retryable failure");
    assert!(
        letter.error.contains("deadline"),
        "the error says why: {}",
        letter.error
    );
    assert!(
        letter.payload.contains(&stalled.to_string()),
        "the hung message's job: {}",
        letter.payload
    );
    assert_eq!(
        upstream.stalled_completions(),
        ATTEMPTS as usize,
        "one model call per attempt, none after the job was dead-lettered"
    );
    assert!(
        p.approvals
            .get(&p.approval_id(101, stalled))
            .await
            .expect("approval store")
            .is_none(),
        "no draft was stored for the hung message"
    );

    // And the drafter still takes new work afterwards.
    let (later, status) = p.customer_writes(103, "Do you ship to Canada?").await;
    assert_eq!(status, 202);
    p.wait_for_note(&p.approval_id(103, later), WAIT)
        .await
        .expect("a later message is drafted after the dead letter");
}
