//! Learning from operators on the running fleet: an operator's edited reply becomes an
//! "answered before" passage for a later, similar question, and one account's answers never
//! reach another account's drafts.

use std::time::Duration;

use copydesk::approvals::ApprovalStatus;
use copydesk::learning::{append, LearningRecord};
use copydesk_testkit::ingress_app::TEST_OPS_TOKEN;
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_workers::knowledge::{LearnedAnswers, LearnedConfig};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edited_reply_is_offered_for_the_next_similar_question_as_answered_before() {
    let p = Pipeline::start(PipelineOptions {
        ops: true,
        ..PipelineOptions::default()
    })
    .await
    .expect("pipeline starts");
    let question = p.chatwoot.incoming_messages(101)[0].clone();
    assert_eq!(p.deliver_message_webhook(101, question.id).await, 202);
    let first = p
        .wait_for_note(&p.approval_id(101, question.id), WAIT)
        .await
        .expect("the first draft");
    assert!(
        !first
            .doc
            .sources
            .iter()
            .any(|s| s.source.starts_with("answered-before#")),
        "nothing was answered before the first question: {:?}",
        first.doc.sources
    );

    let edited = "AN-6 is 3/8 inch (6/16). We stock AN-6 fittings in black and in blue.";
    let response = p
        .ingress
        .http
        .post(
            p.ingress
                .ops_url(&format!("/api/approvals/{}/edit", first.doc.id)),
        )
        .bearer_auth(TEST_OPS_TOKEN)
        .json(&json!({"operator": "maria", "content": edited}))
        .send()
        .await
        .expect("the ops API answers");
    assert_eq!(response.status().as_u16(), 200);
    p.wait_for(&first.doc.id, WAIT, |i| i.status == ApprovalStatus::Sent)
        .await
        .expect("the edited reply is sent");

    // Another customer asks the same thing in another conversation.
    let text = question.content.clone().expect("the seed message has text");
    let (message_id, status) = p.customer_writes(103, &text).await;
    assert_eq!(status, 202);
    let second = p
        .wait_for_note(&p.approval_id(103, message_id), WAIT)
        .await
        .expect("the second draft");
    let reused = second
        .doc
        .sources
        .iter()
        .find(|s| s.source == format!("answered-before#{}", first.doc.id))
        .unwrap_or_else(|| panic!("answered-before passage offered: {:?}", second.doc.sources));
    assert!(reused.title.starts_with("Answered before: "), "{reused:?}");
    assert!(
        second
            .doc
            .draft
            .contains("We stock AN-6 fittings in black and in blue"),
        "the draft reuses the operator's final text: {}",
        second.doc.draft
    );
    p.stop().await.expect("clean stop");
}

fn record(account_id: i64, approval_id: &str, question: &str, reply: &str) -> LearningRecord {
    serde_json::from_value(json!({
        "approval_id": approval_id, "account_id": account_id, "conversation_id": 7,
        "decision": "edit", "operator": "maria", "customer_message": question,
        "draft": "the unedited draft", "final_text": reply,
        "confidence": 60, "recommended_action": "review", "priority": "normal",
        "drafter": "extractive", "placeholder": false, "sources": [],
        "was_sent": true, "decided_at_ms": 0, "customer_replied": false
    }))
    .expect("a learning record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_stay_in_their_account_and_new_records_are_read_incrementally() {
    let p = Pipeline::start(PipelineOptions::default())
        .await
        .expect("pipeline starts");
    let mut conn = p.queue.connection();
    let keys = p.queue.keys().clone();
    append(
        &mut conn,
        &keys,
        &record(
            2,
            "2-7-1",
            "Do you ship to Norway?",
            "Yes, 5 days to Norway.",
        ),
    )
    .await
    .expect("append");
    let learned = LearnedAnswers::new(
        p.queue.clone(),
        LearnedConfig {
            refresh: Duration::ZERO,
            ..LearnedConfig::default()
        },
    );
    assert!(
        learned
            .search(1, "do you ship to norway", 3)
            .await
            .is_empty(),
        "account 2's answer must not reach account 1"
    );
    let found = learned.search(2, "do you ship to norway", 3).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].text, "Yes, 5 days to Norway.");

    // A record appended after the backfill is picked up by the next search.
    append(
        &mut conn,
        &keys,
        &record(
            1,
            "1-7-2",
            "Do you ship to Norway?",
            "Account 1 ships in 3 days.",
        ),
    )
    .await
    .expect("append");
    let found = learned.search(1, "do you ship to norway", 3).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].text, "Account 1 ships in 3 days.");
    assert_eq!(
        learned.search(2, "do you ship to norway", 3).await[0].text,
        "Yes, 5 days to Norway."
    );
    p.stop().await.expect("clean stop");
}
