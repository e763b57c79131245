//! Redis that stays bounded: decided conversations aged past the retention leave Redis near
//! its baseline, a lost follow-up is re-queued by the sweep and sent once, and erasing one
//! conversation removes every key of it and nothing of another's.

use std::time::Duration;

use copydesk::approvals::{
    Action, ApprovalStatus, ApprovalStore, Decision, DraftDoc, Priority, SourceRef,
};
use copydesk::config::RedisConfig;
use copydesk::domain::now_ms;
use copydesk::operator::{DecisionOutcome, Operator};
use copydesk::queue::QueueClient;
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_testkit::testbed::TestBed;
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(60);

fn draft(account: i64, conversation: i64, text: &str) -> DraftDoc {
    let message = conversation * 10;
    DraftDoc {
        id: ApprovalStore::approval_id(account, conversation, message),
        account_id: account,
        conversation_id: conversation,
        message_id: message,
        customer_message: text.to_owned(),
        draft: "Yes, -6 AN fittings fit 3/8 inch hose. See the size guide for the details.".into(),
        confidence: 82,
        action: Action::Review,
        priority: Priority::Normal,
        sentiment: "neutral".into(),
        sources: vec![SourceRef {
            source: "guides/an-sizes.md".into(),
            title: "AN sizes".into(),
            relevance: 0.9,
        }],
        degraded: vec![],
        placeholder: false,
        safety: false,
        vip: false,
        suspicious: Vec::new(),
        drafter: "extractive".into(),
        delivery_id: format!("d-{account}-{conversation}"),
        received_at_ms: now_ms() - 100,
        created_at_ms: now_ms(),
        traceparent: None,
        tracestate: None,
    }
}

async fn client(bed: &TestBed, retention: Duration) -> QueueClient {
    QueueClient::build(&RedisConfig {
        retention,
        ..bed.redis_config()
    })
    .await
    .expect("queue client")
}

async fn used_memory(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .expect("INFO memory");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

async fn keys_under(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        out.extend(batch);
        cursor = next;
        if cursor == 0 {
            return out;
        }
    }
}

async fn decide_many(operator: &Operator, docs: Vec<DraftDoc>) {
    futures::stream::iter(docs)
        .for_each_concurrent(64, |doc| async move {
            operator.approvals().create(&doc).await.expect("stored");
            let outcome = operator
                .decide(
                    &doc.id,
                    Decision::Reject {
                        operator: "Maria".into(),
                        reason: "not needed".into(),
                        reply: None,
                    },
                )
                .await
                .expect("decided");
            assert!(matches!(outcome, DecisionOutcome::Applied(_)));
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_decided_conversations_past_retention_leave_redis_near_its_baseline() {
    let bed = TestBed::start("retention-memory");
    // An hour of retention, so nothing expires while the test writes; the sweep is then run
    // with its clock two hours ahead (the sweep takes "now" as an argument).
    let queue = client(&bed, Duration::from_secs(3600)).await;
    let mut conn = bed.redis_async().await;
    queue.ping().await.expect("redis answers");
    let baseline = used_memory(&mut conn).await;

    let operator = Operator::new(queue.clone());
    let long_text = "My -6 AN fitting leaks at the hose end, what torque do I need? ".repeat(200);
    let docs: Vec<DraftDoc> = (1..=10_000)
        .map(|c| {
            draft(
                1,
                c,
                if c == 1 {
                    &long_text
                } else {
                    "Do the -6 AN fittings fit a 3/8 hose? I ordered last week and still wonder."
                },
            )
        })
        .collect();
    decide_many(&operator, docs).await;
    // One pending item: it never expires and the sweep keeps it.
    let pending = draft(1, 20_000, "Still waiting for an answer, please.");
    operator.approvals().create(&pending).await.expect("stored");
    let ttl = |id: String| {
        let mut conn = conn.clone();
        async move {
            let ttl: i64 = redis::cmd("TTL")
                .arg(id)
                .query_async(&mut conn)
                .await
                .expect("TTL");
            ttl
        }
    };
    let decided_ttl = ttl(queue.keys().approval(&ApprovalStore::approval_id(1, 2, 20))).await;
    assert!(
        (1..=3600).contains(&decided_ttl),
        "decided: TTL {decided_ttl}"
    );
    assert_eq!(ttl(queue.keys().approval(&pending.id)).await, -1);
    let capped = operator
        .approvals()
        .get(&ApprovalStore::approval_id(1, 1, 10))
        .await
        .expect("read")
        .expect("still kept");
    assert!(capped.doc.customer_message.chars().count() < 8_100);
    assert!(capped.doc.customer_message.ends_with("more characters]"));
    let peak = used_memory(&mut conn).await;
    let report = copydesk::retention::memory_by_kind(&queue, 50)
        .await
        .expect("memory report");
    let items = report
        .kinds
        .iter()
        .find(|k| k.kind == "approval items")
        .expect("approval items reported");
    assert_eq!(items.keys, 10_001);
    assert!(items.sampled <= 50);

    // Age past the retention, then the sweep the deadletter role runs.
    let swept = copydesk::retention::sweep(&queue, now_ms() + 2 * 3600 * 1000)
        .await
        .expect("sweep");
    let after = used_memory(&mut conn).await;
    let left = copydesk::retention::memory_by_kind(&queue, 50)
        .await
        .expect("memory report");
    eprintln!(
        "retention memory: baseline {baseline} B, peak {peak} B (per-kind estimate {} B), after {after} B (per-kind estimate {} B, kinds {:?}); swept {swept:?}",
        report.total_estimated_bytes,
        left.total_estimated_bytes,
        left.kinds.iter().map(|k| (&k.kind, k.keys)).collect::<Vec<_>>()
    );
    assert_eq!(swept.approvals, 10_000);
    assert!(
        peak - baseline > 5_000_000,
        "10 000 decisions take real memory"
    );
    assert!(
        after - baseline < (peak - baseline) / 10,
        "memory back near the baseline: baseline {baseline}, peak {peak}, after {after}"
    );
    // What is left is the pending item and sorted sets whose hash tables Redis shrinks
    // lazily: a small part of the peak.
    assert!(
        left.total_estimated_bytes < report.total_estimated_bytes / 20,
        "{left:?}"
    );
    let keys = keys_under(&mut conn, queue.keys().prefix()).await;
    let items: Vec<&String> = keys.iter().filter(|k| k.contains(":approval:")).collect();
    assert_eq!(
        items,
        vec![&queue.keys().approval(&pending.id)],
        "only the pending item is left"
    );
    assert_eq!(
        operator.approvals().pending_count().await.expect("count"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_follow_up_is_requeued_by_the_sweep_and_sent_once() {
    let p = Pipeline::start(PipelineOptions::default())
        .await
        .expect("pipeline starts");
    let message = p.chatwoot.incoming_messages(101)[0].clone();
    assert_eq!(p.deliver_message_webhook(101, message.id).await, 202);
    let id = p.approval_id(101, message.id);
    p.wait_for_note(&id, WAIT).await.expect("draft with note");
    let queue = QueueClient::build(&p.redis_config())
        .await
        .expect("queue client");
    let operator = Operator::new(queue.clone());
    // The decision is stored but its send_reply is never queued (what FollowUpNotQueued
    // reports): the store alone, no enqueue.
    let applied = operator
        .approvals()
        .decide(
            &id,
            Decision::Approve {
                operator: "Maria".into(),
            },
        )
        .await
        .expect("decided");
    assert!(matches!(
        applied,
        copydesk::approvals::DecideOutcome::Applied(_)
    ));
    assert!(p.chatwoot.public_replies(101).is_empty());
    let requeued = operator
        .requeue_lost_follow_ups(Duration::ZERO)
        .await
        .expect("sweep");
    assert_eq!(requeued, 1);
    let sent = p
        .wait_for(&id, WAIT, |i| i.status == ApprovalStatus::Sent)
        .await
        .expect("the re-queued reply is sent");
    assert!(sent.reply_message_id.is_some());
    assert_eq!(
        operator
            .requeue_lost_follow_ups(Duration::ZERO)
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(p.chatwoot.public_replies(101).len(), 1);
    p.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erase_removes_every_key_of_one_conversation_and_leaves_another_intact() {
    let bed = TestBed::start("retention-erase");
    let queue = client(&bed, copydesk::retention::DEFAULT_RETENTION).await;
    let mut conn = bed.redis_async().await;
    let operator = Operator::new(queue.clone());
    let keys = queue.keys().clone();
    for conversation in [7, 8] {
        let first = draft(
            3,
            conversation,
            "Where is my order #5521? It was due Monday.",
        );
        operator.approvals().create(&first).await.expect("stored");
        let _: () = redis::cmd("SET")
            .arg(keys.approval_evidence(&first.id))
            .arg("{\"context\":\"Where is my order\"}")
            .query_async(&mut conn)
            .await
            .expect("evidence");
        let _: () = redis::cmd("HSET")
            .arg(keys.lifecycle(3, conversation))
            .arg("state")
            .arg("{}")
            .query_async(&mut conn)
            .await
            .expect("lifecycle");
        let _: () = redis::cmd("ZADD")
            .arg(keys.lifecycle_due())
            .arg(1)
            .arg(format!("3:{conversation}"))
            .query_async(&mut conn)
            .await
            .expect("due");
        operator
            .decide(
                &first.id,
                Decision::Reject {
                    operator: "Maria".into(),
                    reason: "duplicate".into(),
                    reply: None,
                },
            )
            .await
            .expect("decided");
        let mut second = draft(3, conversation, "Any news on order #5521?");
        second.message_id += 1;
        second.id = ApprovalStore::approval_id(3, conversation, second.message_id);
        operator.approvals().create(&second).await.expect("stored");
    }
    let before = keys_under(&mut conn, keys.prefix()).await;
    let learning_before: u64 = redis::cmd("XLEN")
        .arg(keys.learning())
        .query_async(&mut conn)
        .await
        .expect("XLEN");
    assert_eq!(learning_before, 2);

    let dry = copydesk::retention::erase_conversation(&queue, 3, 7, true, false)
        .await
        .expect("dry run");
    assert_eq!(
        keys_under(&mut conn, keys.prefix()).await.len(),
        before.len()
    );
    assert_eq!(dry.approvals.len(), 2);
    let report = copydesk::retention::erase_conversation(&queue, 3, 7, false, false)
        .await
        .expect("erased");
    assert_eq!(report.keys, dry.keys);

    let after = keys_under(&mut conn, keys.prefix()).await;
    let of_7 = |k: &String| k.contains("3-7-") || k.contains(":3:7");
    assert!(!after.iter().any(of_7), "left of 3:7: {after:?}");
    let of_8: Vec<&String> = before
        .iter()
        .filter(|k| k.contains("3-8-") || k.contains(":3:8"))
        .collect();
    assert!(of_8.len() >= 5, "{of_8:?}");
    for key in of_8 {
        assert!(after.contains(key), "{key} of 3:8 was kept");
    }
    for index in [
        keys.approvals_all(),
        keys.approvals_pending(),
        keys.approvals_decided(),
    ] {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .expect("ZRANGE");
        assert!(
            !members.iter().any(|m| m.starts_with("3-7-")),
            "{index}: {members:?}"
        );
    }
    let due: Vec<String> = redis::cmd("ZRANGE")
        .arg(keys.lifecycle_due())
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .expect("ZRANGE");
    assert_eq!(due, vec!["3:8".to_owned()]);
    let entries: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(keys.learning())
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].1.get("approval_id").map(String::as_str),
        Some("3-8-80")
    );
    let events: Vec<(String, std::collections::HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg(keys.events())
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    assert!(events.iter().all(|(_, f)| !f
        .get("data")
        .is_some_and(|d| d.contains("\"conversation_id\":7"))));
    assert!(!events.is_empty());

    // A reply still owed refuses without --force.
    let owed = draft(3, 9, "Please send the tracking link.");
    operator.approvals().create(&owed).await.expect("stored");
    operator
        .approvals()
        .decide(
            &owed.id,
            Decision::Approve {
                operator: "Maria".into(),
            },
        )
        .await
        .expect("decided");
    let refused = copydesk::retention::erase_conversation(&queue, 3, 9, false, false).await;
    assert!(matches!(
        refused,
        Err(copydesk::retention::EraseError::ReplyPending(_))
    ));
    copydesk::retention::erase_conversation(&queue, 3, 9, false, true)
        .await
        .expect("forced");
    assert!(operator
        .approvals()
        .get(&owed.id)
        .await
        .expect("read")
        .is_none());
}
