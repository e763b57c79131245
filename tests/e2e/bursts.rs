//! One draft per burst: a customer's quick messages in one conversation are drafted once,
//! with all of them as the question (one retrieval, one model call, one private note); a
//! single message waits the window; a message after the cap starts a new draft.

use std::time::Duration;

use copydesk::queue::Burst;
use copydesk_testkit::fake_upstream::{FakeUpstream, FAKE_MODEL};
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};

const WAIT: Duration = Duration::from_secs(60);

async fn pipeline(upstream: &FakeUpstream, burst: Burst) -> Pipeline {
    Pipeline::start(PipelineOptions {
        burst,
        env: [
            (
                "COPYDESK_KNOWLEDGE_URL".to_owned(),
                upstream.retriever_url(),
            ),
            ("COPYDESK_LLM_URL".to_owned(), upstream.llm_url()),
            ("COPYDESK_LLM_MODEL".to_owned(), FAKE_MODEL.to_owned()),
        ]
        .into(),
        ..PipelineOptions::default()
    })
    .await
    .expect("pipeline starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_quick_messages_get_one_draft_one_retrieval_one_model_call_and_one_note() {
    let upstream = FakeUpstream::start().await;
    let p = pipeline(
        &upstream,
        Burst {
            window: Duration::from_millis(2000),
            cap: Duration::from_millis(8000),
        },
    )
    .await;
    let lines = [
        "hi",
        "my AN-6 line leaks",
        "at the carb",
        "what size should it be?",
    ];
    let mut ids = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        if n > 0 {
            // Pacing: the customer types the next line half a second later.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (id, status) = p.customer_writes(103, line).await;
        assert_eq!(status, 202);
        ids.push(id);
    }
    let last = p.approval_id(103, ids[3]);
    let item = p
        .wait_for_note(&last, WAIT)
        .await
        .expect("the burst's draft");
    for line in lines {
        assert!(
            item.doc.customer_message.contains(line),
            "the question holds {line:?}: {:?}",
            item.doc.customer_message
        );
    }
    for id in &ids[..3] {
        assert!(
            p.approvals
                .get(&p.approval_id(103, *id))
                .await
                .expect("store")
                .is_none(),
            "no draft of its own for message {id}"
        );
    }
    assert_eq!(upstream.requests_to("POST", "/retrieve").len(), 1);
    let calls = upstream.requests_to("POST", "/v1/chat/completions");
    assert_eq!(calls.len(), 1);
    let prompt = calls[0].body["messages"][1]["content"]
        .as_str()
        .expect("a user prompt")
        .to_owned();
    for line in lines {
        assert!(prompt.contains(line), "the model saw {line:?}: {prompt}");
    }
    assert_eq!(p.chatwoot.private_notes(103).len(), 1);
    p.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_message_waits_the_window_then_is_drafted() {
    let upstream = FakeUpstream::start().await;
    let window = Duration::from_millis(1500);
    let p = pipeline(
        &upstream,
        Burst {
            window,
            cap: Duration::from_millis(6000),
        },
    )
    .await;
    let (id, status) = p
        .customer_writes(101, "What does AN-6 mean in inches?")
        .await;
    assert_eq!(status, 202);
    let item = p
        .wait_for_note(&p.approval_id(101, id), WAIT)
        .await
        .expect("drafted");
    let waited = item.doc.created_at_ms - item.doc.received_at_ms;
    assert!(
        waited >= window.as_millis() as i64,
        "the draft waited the burst window: {waited} ms"
    );
    println!("single message: received → draft stored in {waited} ms (window {window:?})");
    assert_eq!(
        upstream.requests_to("POST", "/v1/chat/completions").len(),
        1
    );
    p.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_after_the_cap_starts_a_new_draft() {
    let upstream = FakeUpstream::start().await;
    let p = pipeline(
        &upstream,
        Burst {
            window: Duration::from_millis(1000),
            cap: Duration::from_millis(2500),
        },
    )
    .await;
    // Eight messages 500 ms apart: the window never closes, the cap ends the first burst.
    let mut ids = Vec::new();
    for n in 0..8 {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let (id, status) = p
            .customer_writes(102, &format!("line {n} about my hose"))
            .await;
        assert_eq!(status, 202);
        ids.push(id);
    }
    let last = p.approval_id(102, ids[7]);
    p.wait_for_note(&last, WAIT)
        .await
        .expect("the last burst's draft");
    let notes = p.chatwoot.private_notes(102).len();
    let calls = upstream.requests_to("POST", "/v1/chat/completions").len();
    assert!(notes >= 2, "the cap started a new draft: {notes} notes");
    assert!(
        notes < 8,
        "bursts were drafted once each: {notes} notes for 8 messages"
    );
    assert_eq!(calls, notes, "one model call per draft");
    p.stop().await.expect("clean stop");
}
