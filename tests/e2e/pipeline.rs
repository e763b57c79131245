//! The draft pipeline end to end: real redis-server, the real ingress, every worker role
//! (in-process, or as a real process that gets SIGKILLed) and the fake Chatwoot.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use copydesk::approvals::{Action, ApprovalItem, ApprovalStatus, Priority};
use copydesk::jobs::Job;
use copydesk::jobs::{LookupKnowledge, PostNote};
use copydesk::queue::{DeadLetter, DeadLetterFilter, DeadLetters};
use copydesk_testkit::fake_chatwoot::{Endpoint, Fault};
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_testkit::process::{role_command, TestProcess};
use copydesk_testkit::wait::{wait_for, wait_until, wait_until_async};
use copydesk_testkit::webhook::private_note;
use copydesk_workers::drafting::PLACEHOLDER_TEXT;
use copydesk_workers::runtime::Role;

const WAIT: Duration = Duration::from_secs(60);

/// Delivers the seed's customer message in `conversation` and waits for its note.
async fn draft_seed_message(p: &Pipeline, conversation: i64) -> ApprovalItem {
    let message = p.chatwoot.incoming_messages(conversation)[0].clone();
    assert_eq!(
        p.deliver_message_webhook(conversation, message.id).await,
        202
    );
    let id = p.approval_id(conversation, message.id);
    p.wait_for_note(&id, WAIT)
        .await
        .unwrap_or_else(|| panic!("approval {id} with a posted note"))
}

async fn dead_letters(p: &Pipeline, queue: &str) -> Vec<DeadLetter> {
    DeadLetters::new(&p.queue)
        .list(&DeadLetterFilter {
            queue: Some(queue.to_owned()),
            ..DeadLetterFilter::default()
        })
        .await
        .expect("dead letters list")
}

async fn wait_for_dead_letter(p: &Pipeline, queue: &str) -> DeadLetter {
    wait_for(format_args!("a dead letter on {queue}"), WAIT, || async {
        dead_letters(p, queue).await.into_iter().next()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_conversations_become_private_notes_and_pending_approvals() {
    let p = PipelineOptions::default().start().await;

    let an6 = draft_seed_message(&p, 101).await;
    assert!(an6.doc.draft.contains("3/8"), "{}", an6.doc.draft);
    assert!(
        an6.doc
            .sources
            .iter()
            .any(|s| s.source.starts_with("faq.md")),
        "{:?}",
        an6.doc.sources
    );
    assert!(
        an6.doc.confidence >= 75,
        "confidence {}",
        an6.doc.confidence
    );
    assert_eq!(an6.doc.action, Action::Send);
    assert_eq!(an6.doc.priority, Priority::Normal);
    assert!(
        !an6.doc.draft.contains("faq.md") && !an6.doc.draft.contains("Source"),
        "the reply holds only customer-facing text: {}",
        an6.doc.draft
    );

    let leak = draft_seed_message(&p, 102).await;
    assert_eq!(leak.doc.priority, Priority::Urgent);
    assert!(matches!(leak.doc.action, Action::Review | Action::Escalate));
    assert!(
        leak.doc.draft.starts_with("Safety first"),
        "{}",
        leak.doc.draft
    );
    assert!(leak.doc.safety);

    let e85 = draft_seed_message(&p, 103).await;
    assert!(e85.doc.confidence < 40, "confidence {}", e85.doc.confidence);
    assert_eq!(e85.doc.action, Action::Escalate);
    assert!(e85.doc.vip, "contact 13 is VIP");

    for (conversation, item) in [(101, &an6), (102, &leak), (103, &e85)] {
        assert_eq!(item.status, ApprovalStatus::Pending);
        let notes = p.chatwoot.private_notes(conversation);
        assert_eq!(notes.len(), 1, "one note in {conversation}");
        assert_eq!(Some(notes[0].id), item.note_id);
        let content = notes[0].content.clone().unwrap_or_default();
        assert!(content.contains(&item.doc.draft));
        assert!(content.contains(&format!("confidence {}/100", item.doc.confidence)));
        for source in &item.doc.sources {
            assert!(
                content.contains(&source.source),
                "note lists {}",
                source.source
            );
        }
        assert!(
            p.chatwoot.public_replies(conversation).is_empty(),
            "nothing sent to the customer"
        );
    }
    // The wire format Chatwoot received: "outgoing" + private, never message_type 0.
    let posts = p.chatwoot.requests_to(Endpoint::CreateMessage);
    assert_eq!(posts.len(), 3);
    for post in posts {
        let body = post.body.expect("a JSON body");
        assert_eq!(body["message_type"], "outgoing");
        assert_eq!(body["private"], true);
    }
    let pending = p
        .approvals
        .list(Some(ApprovalStatus::Pending), 0, 10)
        .await
        .expect("list");
    let order: Vec<Priority> = pending.iter().map(|i| i.doc.priority).collect();
    // The seed's AN-6 question is a plain product question: normal, not low.
    assert_eq!(order, [Priority::Urgent, Priority::High, Priority::Normal]);
    p.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn our_own_private_note_echoed_back_creates_no_job() {
    let p = PipelineOptions::default().start().await;
    let item = draft_seed_message(&p, 101).await;
    let note_id = item.note_id.expect("note posted");
    let before = p.approvals.list(None, 0, 100).await.expect("list").len();
    let response = p.ingress.post_webhook(&private_note(note_id, 101)).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "ignored", "{body}");
    let depth = p.queue.depth(LookupKnowledge::QUEUE).await.expect("depth");
    assert!(depth.is_idle(), "{depth:?}");
    // Marker: a later customer message goes all the way through; anything the echo had set
    // off would have run before it.
    draft_seed_message(&p, 102).await;
    assert_eq!(
        p.approvals.list(None, 0, 100).await.expect("list").len(),
        before + 1,
        "only the later message made an approval item"
    );
    assert_eq!(p.chatwoot.private_notes(101).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn knowledge_backend_down_gives_a_degraded_draft() {
    let p = PipelineOptions::default()
        .env(&[
            ("COPYDESK_KNOWLEDGE_URL", "http://127.0.0.1:9/retrieve"),
            ("COPYDESK_KNOWLEDGE_TIMEOUT_MS", "500"),
            ("COPYDESK_MAX_ATTEMPTS_LOOKUP_KNOWLEDGE", "2"),
        ])
        .start()
        .await;
    let item = draft_seed_message(&p, 101).await;
    assert!(
        item.doc
            .degraded
            .iter()
            .any(|d| d == "knowledge_unavailable"),
        "{:?}",
        item.doc.degraded
    );
    assert!(item.doc.sources.is_empty());
    assert_eq!(item.status, ApprovalStatus::Pending);
    let note = &p.chatwoot.private_notes(101)[0];
    assert!(note
        .content
        .as_deref()
        .is_some_and(|c| c.contains("knowledge_unavailable")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn llm_backend_down_gives_a_placeholder_approval() {
    let p = PipelineOptions::default()
        .env(&[
            ("COPYDESK_LLM_URL", "http://127.0.0.1:9/v1"),
            ("COPYDESK_LLM_MODEL", "test-model"),
            ("COPYDESK_LLM_TIMEOUT_MS", "500"),
            ("COPYDESK_MAX_ATTEMPTS_GENERATE_DRAFT", "2"),
        ])
        .start()
        .await;
    let item = draft_seed_message(&p, 101).await;
    assert!(item.doc.placeholder);
    assert_eq!(item.doc.draft, PLACEHOLDER_TEXT);
    assert_eq!(item.doc.drafter, "placeholder");
    assert_eq!(item.status, ApprovalStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chatwoot_failing_three_times_then_answering_posts_exactly_one_note() {
    let p = PipelineOptions::default().start().await;
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 3, Fault::Status(500));
    let item = draft_seed_message(&p, 101).await;
    assert_eq!(p.chatwoot.private_notes(101).len(), 1);
    let statuses: Vec<Option<u16>> = p
        .chatwoot
        .requests_to(Endpoint::CreateMessage)
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(500), Some(200)]);
    assert_eq!(
        p.chatwoot.private_notes(101)[0].id,
        item.note_id.expect("note")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_note_applied_but_unanswered_is_not_posted_twice() {
    let p = PipelineOptions::default().start().await;
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 3, Fault::DropAfterApply);
    let item = draft_seed_message(&p, 101).await;
    let notes = p.chatwoot.private_notes(101);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].id, item.note_id.expect("note"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_4xx_goes_to_the_dead_letters_at_once_and_can_be_replayed() {
    let p = PipelineOptions::default()
        .env(&[("COPYDESK_MAX_ATTEMPTS_POST_NOTE", "4")])
        .start()
        .await;
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 1, Fault::Status(404));
    let message = p.chatwoot.incoming_messages(101)[0].clone();
    assert_eq!(p.deliver_message_webhook(101, message.id).await, 202);
    let letter = wait_for_dead_letter(&p, PostNote::QUEUE).await;
    assert_eq!(letter.attempts, 1, "no retries burnt on a 404");
    assert!(letter.permanent);
    assert!(letter.error.contains("404"), "{}", letter.error);
    assert_eq!(p.chatwoot.requests_to(Endpoint::CreateMessage).len(), 1);
    // The approval item stays usable without its note.
    let id = p.approval_id(101, message.id);
    let item = p.approvals.get(&id).await.expect("get").expect("item");
    assert_eq!(item.status, ApprovalStatus::Pending);
    assert_eq!(item.note_id, None);
    // The letter holds enough to replay it.
    let job: PostNote = serde_json::from_str(&letter.payload).expect("the payload is the job");
    assert_eq!(job.approval_id, id);
    DeadLetters::new(&p.queue)
        .retry(&letter.id)
        .await
        .expect("replay");
    assert!(p.wait_for_note(&id, WAIT).await.is_some());
    assert_eq!(p.chatwoot.private_notes(101).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_5xx_goes_to_the_dead_letters_only_after_the_attempt_cap() {
    let p = PipelineOptions::default()
        .env(&[("COPYDESK_MAX_ATTEMPTS_POST_NOTE", "3")])
        .start()
        .await;
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 100, Fault::Status(503));
    let message = p.chatwoot.incoming_messages(101)[0].clone();
    assert_eq!(p.deliver_message_webhook(101, message.id).await, 202);
    let letter = wait_for_dead_letter(&p, PostNote::QUEUE).await;
    assert_eq!(letter.attempts, 3);
    assert!(!letter.permanent);
    assert!(letter.first_failed_at_ms <= letter.last_failed_at_ms);
    assert_eq!(p.chatwoot.requests_to(Endpoint::CreateMessage).len(), 3);
    p.chatwoot.clear_faults();
    DeadLetters::new(&p.queue)
        .retry(&letter.id)
        .await
        .expect("replay");
    let id = p.approval_id(101, message.id);
    assert!(p.wait_for_note(&id, WAIT).await.is_some());
    assert_eq!(p.chatwoot.private_notes(101).len(), 1);
}

/// A `copydesk run --role notes` process against the pipeline's Redis and fake Chatwoot.
fn spawn_notes_process(env: &HashMap<String, String>) -> TestProcess {
    TestProcess::spawn(
        role_command(env!("CARGO_BIN_EXE_copydesk-fleet"), "notes", env)
            .env("COPYDESK_VISIBILITY_TIMEOUT_MS", "2000")
            .env("COPYDESK_RECLAIM_INTERVAL_MS", "200"),
        "the notes worker",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_notes_worker_killed_mid_job_is_replaced_and_the_note_posted_once() {
    // Everything but the notes role in-process; notes as a real process we can SIGKILL.
    let roles = vec![Role::KNOWLEDGE, Role::DRAFTER, Role::LIFECYCLE];
    let p = PipelineOptions::default().roles(roles).start().await;
    let message = p.chatwoot.incoming_messages(101)[0].clone();
    let id = p.approval_id(101, message.id);
    // The first note post hangs for 3 s inside Chatwoot: the worker is mid-job when killed.
    p.chatwoot.fail_next_on(
        Endpoint::CreateMessage,
        1,
        Fault::Delay(Duration::from_secs(3)),
    );
    assert_eq!(p.deliver_message_webhook(101, message.id).await, 202);
    assert!(
        p.wait_for(&id, WAIT, |_| true).await.is_some(),
        "draft stored"
    );

    let mut victim = spawn_notes_process(&p.env);
    wait_until_async("the notes process claims the job", WAIT, || async {
        p.queue.depth(PostNote::QUEUE).await.expect("depth").running > 0
    })
    .await;
    // Mid-job: Chatwoot has applied the post and holds its answer back for 3 s.
    wait_until("the note post reached Chatwoot", WAIT, || {
        !p.chatwoot.private_notes(101).is_empty()
    })
    .await;
    victim.kill();
    let killed_at = Instant::now();
    assert_eq!(
        p.approvals
            .get(&id)
            .await
            .expect("get")
            .expect("item")
            .note_id,
        None,
        "killed before the note id was stored"
    );

    let mut successor = spawn_notes_process(&p.env);
    let item = p.wait_for_note(&id, WAIT).await;
    let redelivered_after = killed_at.elapsed();
    successor.kill();
    let item = item.expect("the note is posted after the restart");
    let notes = p.chatwoot.private_notes(101);
    assert_eq!(notes.len(), 1, "exactly one note: {notes:?}");
    assert_eq!(Some(notes[0].id), item.note_id);
    println!(
        "SIGKILL mid-job: note stored {:.2} s after the kill (visibility timeout 2 s); notes posted: {}",
        redelivered_after.as_secs_f64(),
        notes.len()
    );
}

/// Sixty customer messages at a steady rate (~20 a second) over three conversations: every
/// one gets its note (older drafts are superseded, each still gets its note). The latency
/// figures of this scenario are `cargo run -p copydesk-tests --release --bin latency-bench`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_at_a_steady_rate_gets_its_note() {
    let p = PipelineOptions::default().start().await;
    let count = 60;
    let mut ids = Vec::new();
    for n in 0..count {
        let conversation = 101 + (n % 3) as i64;
        let text = copydesk_testkit::pipeline::STEADY_RATE_TEXTS
            [n % copydesk_testkit::pipeline::STEADY_RATE_TEXTS.len()];
        let (message_id, status) = p.customer_writes(conversation, text).await;
        assert_eq!(status, 202);
        ids.push(p.approval_id(conversation, message_id));
        // Pacing, not waiting: customers write at ~20 messages/s.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut noted = 0;
    for id in &ids {
        let item = p.wait_for_note(id, WAIT).await.expect("note posted");
        assert!(item.note_posted_at_ms.is_some(), "{id}: note time stored");
        noted += 1;
    }
    assert_eq!(noted, count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_note_that_lands_after_the_client_timed_out_is_not_posted_twice() {
    // Chatwoot stores the first post 1.5 s late, after our 300 ms timeout: the retry must
    // wait for it (the ambiguous-failure settle delay) and find it, not post a second note.
    let p = PipelineOptions::default()
        .env(&[("CHATWOOT_TIMEOUT_MS", "300")])
        .start()
        .await;
    p.chatwoot.fail_next_on(
        Endpoint::CreateMessage,
        1,
        Fault::ApplyAfter(Duration::from_millis(1500)),
    );
    let item = draft_seed_message(&p, 101).await;
    // Marker: the late write has landed in Chatwoot (nothing else is in flight).
    wait_until("Chatwoot applied the late note", WAIT, || {
        p.chatwoot.queued_faults() == 0 && p.chatwoot.late_writes_pending() == 0
    })
    .await;
    let notes = p.chatwoot.private_notes(101);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(Some(notes[0].id), item.note_id);
}
