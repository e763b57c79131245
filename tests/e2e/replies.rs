//! `send_reply` end to end: approved, edited and operator-written replies reach the customer
//! exactly once, even when Chatwoot applies a reply and drops the answer; stale replies are
//! held back; a newer customer message supersedes the older draft.

use std::time::Duration;

use copydesk::approvals::{ApprovalItem, ApprovalStatus, DecideOutcome, Decision};
use copydesk::chatwoot::{ChatwootClient, ConversationStatus};
use copydesk::domain::{AccountId, ConversationId};
use copydesk::jobs::{JobMeta, SendReply};
use copydesk_testkit::fake_chatwoot::{Endpoint, Fault};
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};

const WAIT: Duration = Duration::from_secs(60);

async fn drafted(conversation: i64) -> (Pipeline, ApprovalItem) {
    let p = Pipeline::start(PipelineOptions::default())
        .await
        .expect("pipeline starts");
    let message = p.chatwoot.incoming_messages(conversation)[0].clone();
    assert_eq!(
        p.deliver_message_webhook(conversation, message.id).await,
        202
    );
    let id = p.approval_id(conversation, message.id);
    let item = p.wait_for_note(&id, WAIT).await.expect("draft with note");
    (p, item)
}

/// What the ops API does on a decision that sends something: decide, then queue `send_reply`.
async fn decide_and_send(p: &Pipeline, item: &ApprovalItem, decision: Decision) -> ApprovalItem {
    let applied = match p
        .approvals
        .decide(&item.doc.id, decision)
        .await
        .expect("decide")
    {
        DecideOutcome::Applied(item) => *item,
        other => panic!("decision not applied: {other:?}"),
    };
    p.queue
        .enqueue(&SendReply {
            meta: JobMeta::new(
                format!("ops:{}", item.doc.id)
                    .parse()
                    .expect("a valid delivery id"),
                copydesk::approvals::now_ms(),
            ),
            account_id: AccountId::new(item.doc.account_id),
            conversation_id: ConversationId::new(item.doc.conversation_id),
            approval_id: item.doc.id.parse().expect("a valid approval id"),
        })
        .await
        .expect("enqueue");
    applied
}

async fn wait_settled(p: &Pipeline, id: &str) -> ApprovalItem {
    p.wait_for(id, WAIT, |i| {
        matches!(i.status, ApprovalStatus::Sent | ApprovalStatus::HeldBack)
    })
    .await
    .expect("the reply job settles")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_sends_the_draft_once_with_our_source_id() {
    let (p, item) = drafted(101).await;
    decide_and_send(
        &p,
        &item,
        Decision::Approve {
            operator: "ana".into(),
        },
    )
    .await;
    let done = wait_settled(&p, &item.doc.id).await;
    assert_eq!(done.status, ApprovalStatus::Sent);
    let replies = p.chatwoot.public_replies(101);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].content.as_deref(), Some(item.doc.draft.as_str()));
    assert_eq!(
        replies[0].source_id.as_deref(),
        Some(format!("copydesk:{}", item.doc.id).as_str())
    );
    assert_eq!(done.reply_message_id, Some(replies[0].id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edit_sends_the_edited_text_and_reject_sends_the_operators_reply() {
    let (p, item) = drafted(101).await;
    let edited = "AN-6 is 3/8 inch. Anything else?";
    decide_and_send(
        &p,
        &item,
        Decision::Edit {
            operator: "ana".into(),
            content: edited.into(),
        },
    )
    .await;
    wait_settled(&p, &item.doc.id).await;
    let replies = p.chatwoot.public_replies(101);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].content.as_deref(), Some(edited));

    let message = p.chatwoot.incoming_messages(103)[0].clone();
    p.deliver_message_webhook(103, message.id).await;
    let id = p.approval_id(103, message.id);
    let item = p.wait_for_note(&id, WAIT).await.expect("draft");
    let own = "A specialist will call you today about your build.";
    decide_and_send(
        &p,
        &item,
        Decision::Reject {
            operator: "ben".into(),
            reason: "out of scope".into(),
            reply: Some(own.into()),
        },
    )
    .await;
    wait_settled(&p, &id).await;
    let replies = p.chatwoot.public_replies(103);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].content.as_deref(), Some(own));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_dropped_answers_in_a_row_still_send_one_reply() {
    let (p, item) = drafted(101).await;
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 10, Fault::DropAfterApply);
    decide_and_send(
        &p,
        &item,
        Decision::Approve {
            operator: "ana".into(),
        },
    )
    .await;
    let done = wait_settled(&p, &item.doc.id).await;
    assert_eq!(done.status, ApprovalStatus::Sent);
    let replies = p.chatwoot.public_replies(101);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let posts = p.chatwoot.requests_to(Endpoint::CreateMessage);
    assert_eq!(
        posts
            .iter()
            .filter(|r| r.body.as_ref().is_some_and(|b| b["private"] == false))
            .count(),
        1,
        "the reply was posted once; later attempts found it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_newer_customer_message_supersedes_the_draft_and_a_decision_conflicts() {
    let (p, item) = drafted(101).await;
    let (newer, status) = p
        .customer_writes(101, "Also, do you have AN-8 hose ends?")
        .await;
    assert_eq!(status, 202);
    let newer_id = p.approval_id(101, newer);
    p.wait_for_note(&newer_id, WAIT).await.expect("newer draft");
    let old = p
        .approvals
        .get(&item.doc.id)
        .await
        .expect("get")
        .expect("item");
    assert_eq!(old.status, ApprovalStatus::Superseded);
    let outcome = p
        .approvals
        .decide(
            &item.doc.id,
            Decision::Approve {
                operator: "ana".into(),
            },
        )
        .await
        .expect("decide");
    assert_eq!(outcome, DecideOutcome::Conflict(ApprovalStatus::Superseded));
    assert!(p.chatwoot.public_replies(101).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_to_a_resolved_conversation_is_held_back() {
    let (p, item) = drafted(101).await;
    let client = ChatwootClient::new(&p.chatwoot.client_config()).expect("client");
    client
        .toggle_status(101, ConversationStatus::Resolved, None)
        .await
        .expect("resolve");
    decide_and_send(
        &p,
        &item,
        Decision::Approve {
            operator: "ana".into(),
        },
    )
    .await;
    let done = wait_settled(&p, &item.doc.id).await;
    assert_eq!(done.status, ApprovalStatus::HeldBack);
    assert!(done
        .held_back_reason
        .as_deref()
        .is_some_and(|r| r.contains("resolved")));
    assert!(p.chatwoot.public_replies(101).is_empty());
}

/// Issue 12 §3: the retry after an ambiguous reply failure finds the reply however many
/// messages arrived since (here 30 private notes, more than one page of 20).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ambiguous_reply_failure_then_30_messages_still_sends_one_reply() {
    let (p, item) = drafted(101).await;
    let client = ChatwootClient::new(&p.chatwoot.client_config()).expect("client");
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 1, Fault::DropAfterApply);
    decide_and_send(
        &p,
        &item,
        Decision::Approve {
            operator: "ana".into(),
        },
    )
    .await;
    // The reply lands, its answer is lost; the retry waits the settle delay (5 s), during
    // which agents write 30 private notes.
    let deadline = std::time::Instant::now() + WAIT;
    while p.chatwoot.public_replies(101).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reply never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in 0..30 {
        client
            .create_message(
                101,
                &copydesk::chatwoot::NewMessage::private_note(format!("agent note {n}")),
            )
            .await
            .expect("note");
    }
    let done = wait_settled(&p, &item.doc.id).await;
    assert_eq!(done.status, ApprovalStatus::Sent);
    let replies = p.chatwoot.public_replies(101);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(done.reply_message_id, Some(replies[0].id));
}

/// Issue 12 §3: two holders of one `send_reply` (a stalled worker and its successor) never
/// both pass the "already posted?" check: the second waits for the first's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_holders_of_one_send_reply_post_one_reply() {
    use copydesk::queue::JobAttempt;
    use copydesk_workers::jobs::{send_reply, Deps};
    let (p, item) = drafted(101).await;
    p.approvals
        .decide(
            &item.doc.id,
            Decision::Approve {
                operator: "ana".into(),
            },
        )
        .await
        .expect("decide");
    // Both holders' reads of the messages are answered late, so without a lock both would
    // read "not posted yet" before either posts.
    p.chatwoot.fail_next_on(
        Endpoint::ListMessages,
        2,
        Fault::Delay(Duration::from_millis(500)),
    );
    let client =
        std::sync::Arc::new(ChatwootClient::new(&p.chatwoot.client_config()).expect("client"));
    let handler = send_reply::Handler::new(Deps::new(p.queue.clone(), None), client);
    let job = SendReply {
        meta: JobMeta::new(
            format!("ops:{}", item.doc.id)
                .parse()
                .expect("a valid delivery id"),
            copydesk::approvals::now_ms(),
        ),
        account_id: AccountId::new(item.doc.account_id),
        conversation_id: ConversationId::new(item.doc.conversation_id),
        approval_id: item.doc.id.parse().expect("a valid approval id"),
    };
    let attempt = JobAttempt {
        attempt: 1,
        max_attempts: 5,
        redelivered: true,
    };
    let (a, b) = tokio::join!(
        handler.handle(job.clone(), attempt),
        handler.handle(job.clone(), attempt)
    );
    // One posts; the other is told to come back (the lock is held) or found the reply.
    assert!(a.is_ok() || b.is_ok(), "{a:?} {b:?}");
    let again = handler.handle(job, attempt).await;
    assert!(again.is_ok(), "{again:?}");
    let replies = p.chatwoot.public_replies(101);
    assert_eq!(replies.len(), 1, "{replies:?}");
}
