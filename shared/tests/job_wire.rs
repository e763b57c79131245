//! Jobs already queued in Redis keep decoding: every payload below is exactly what the code
//! wrote before ids, priority and status became types (captured with `serde_json::to_string`
//! of the untyped structs). Each decodes, re-encodes to the same bytes, and reads as the
//! typed values it stands for.

use copydesk::domain::{
    AccountId, ApprovalId, ConversationId, DeliveryId, MessageId, Priority, ReportedPriority,
    ReportedStatus,
};
use copydesk::jobs::{
    AssignConversation, AssignReason, ConversationChange, GenerateDraft, LookupKnowledge, PostNote,
    SendReply, TrackConversation, ALL_QUEUES,
};
use copydesk::Job;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `(queue, payload as the untyped code serialised it)`, every job kind and every variant.
const WRITTEN_BEFORE: &[(&str, &str)] = &[
    (
        LookupKnowledge::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"message_id":4242,"inbox_id":3,"content":"Do you ship AN-6 fittings to Canada?","contact":{"id":99,"name":"Jane","custom_attributes":{"vip":true}},"conversation_attributes":{"vip":true},"created_at":1785147895}"#,
    ),
    (
        GenerateDraft::QUEUE,
        r#"{"message":{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"message_id":4242,"inbox_id":3,"content":"Do you ship AN-6 fittings to Canada?","contact":{"id":99,"name":"Jane","custom_attributes":{"vip":true}},"conversation_attributes":{"vip":true},"created_at":1785147895},"passages":[{"source":"shipping.md","title":"Shipping","text":"We ship worldwide.","relevance":0.75}],"knowledge_degraded":false,"context":[{"from_customer":true,"text":"hello"}]}"#,
    ),
    (
        PostNote::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"approval_id":"1-117-4242"}"#,
    ),
    (
        SendReply::QUEUE,
        r#"{"meta":{"delivery_id":"ops:1-117-4242","received_at_ms":1785147899000},"account_id":1,"conversation_id":117,"approval_id":"1-117-4242"}"#,
    ),
    (
        AssignConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"reason":{"kind":"new_conversation","first_message":"hi"}}"#,
    ),
    (
        AssignConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"reason":{"kind":"new_conversation","first_message":null}}"#,
    ),
    (
        AssignConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"reason":{"kind":"drafted","approval_id":"1-117-4242","priority":"urgent","text":"brake line leaks","vip":true}}"#,
    ),
    (
        AssignConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"reason":{"kind":"drafted","approval_id":"1-117-4243","priority":"normal","text":"thanks","vip":false}}"#,
    ),
    (
        AssignConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"reason":{"kind":"escalation","approval_id":"1-117-4242","team":"Order Support","note":"refund","operator":"Ann (7)"}}"#,
    ),
    (
        AssignConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"reason":{"kind":"agent_online"}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"created","status":"open"}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"created","status":"pending"}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"updated","status":"snoozed","assignee_id":7,"priority":"high"}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"updated","status":"open","assignee_id":null,"priority":null}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"updated","status":"open","assignee_id":null,"priority":"medium"}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"status_changed","status":"resolved"}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"status_changed","status":"archived"}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"customer_message","message_id":4242}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"agent_reply","message_id":4243,"sender_id":7}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"agent_reply","message_id":4244,"sender_id":null}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"csat_answered","rating":5,"feedback":"great"}}"#,
    ),
    (
        TrackConversation::QUEUE,
        r#"{"meta":{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072},"account_id":1,"conversation_id":117,"occurred_at_ms":1785147895072,"change":{"kind":"auto_close_sweep"}}"#,
    ),
];

/// Decodes `json` as `T` and checks that encoding it again gives the same bytes.
fn round_trip<T: Job + Serialize + DeserializeOwned>(json: &str) -> T {
    let job: T = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("{} payload no longer decodes: {e}\n{json}", T::QUEUE));
    let again = serde_json::to_string(&job).expect("encodes");
    assert_eq!(again, json, "{} payload re-encodes differently", T::QUEUE);
    job
}

#[test]
fn every_payload_written_before_decodes_and_re_encodes_byte_for_byte() {
    for (queue, json) in WRITTEN_BEFORE {
        match *queue {
            LookupKnowledge::QUEUE => drop(round_trip::<LookupKnowledge>(json)),
            GenerateDraft::QUEUE => drop(round_trip::<GenerateDraft>(json)),
            PostNote::QUEUE => drop(round_trip::<PostNote>(json)),
            SendReply::QUEUE => drop(round_trip::<SendReply>(json)),
            AssignConversation::QUEUE => drop(round_trip::<AssignConversation>(json)),
            TrackConversation::QUEUE => drop(round_trip::<TrackConversation>(json)),
            other => panic!("no fixture decoder for queue {other}"),
        }
    }
    for queue in ALL_QUEUES {
        assert!(
            WRITTEN_BEFORE.iter().any(|(q, _)| *q == queue),
            "no payload fixture for job kind {queue}"
        );
    }
}

fn fixture(queue: &str, index: usize) -> &'static str {
    WRITTEN_BEFORE
        .iter()
        .filter(|(q, _)| *q == queue)
        .nth(index)
        .map(|(_, json)| *json)
        .expect("fixture exists")
}

#[test]
fn old_payloads_read_as_typed_ids() {
    let lookup: LookupKnowledge = round_trip(fixture(LookupKnowledge::QUEUE, 0));
    assert_eq!(lookup.account_id, AccountId::new(1));
    assert_eq!(lookup.conversation_id, ConversationId::new(117));
    assert_eq!(lookup.message_id, MessageId::new(4242));
    assert_eq!(
        lookup.meta.delivery_id,
        "3f1c2a9e-6b7d".parse::<DeliveryId>().expect("valid")
    );
    assert_eq!(lookup.job_id(), "1:117:4242");
    let reply: SendReply = round_trip(fixture(SendReply::QUEUE, 0));
    assert_eq!(
        reply.approval_id,
        "1-117-4242".parse::<ApprovalId>().expect("valid")
    );
    assert_eq!(
        reply.meta.delivery_id,
        DeliveryId::for_operator("1-117-4242")
    );
    assert_eq!(reply.job_id(), "1-117-4242");
}

#[test]
fn old_priority_strings_read_as_priorities() {
    let urgent: AssignConversation = round_trip(fixture(AssignConversation::QUEUE, 2));
    let normal: AssignConversation = round_trip(fixture(AssignConversation::QUEUE, 3));
    for (job, expected) in [(urgent, Priority::Urgent), (normal, Priority::Normal)] {
        match job.reason {
            AssignReason::Drafted { priority, .. } => assert_eq!(priority, expected),
            other => panic!("expected a drafted reason, got {other:?}"),
        }
    }
}

#[test]
fn old_status_strings_read_as_statuses_and_unknown_ones_survive() {
    let changes: Vec<ConversationChange> = (0..7)
        .map(|i| round_trip::<TrackConversation>(fixture(TrackConversation::QUEUE, i)).change)
        .collect();
    assert_eq!(
        changes[0],
        ConversationChange::Created {
            status: ReportedStatus::Open
        }
    );
    assert_eq!(
        changes[2],
        ConversationChange::Updated {
            status: ReportedStatus::Snoozed,
            assignee_id: Some(7),
            priority: Some(ReportedPriority::High),
        }
    );
    assert_eq!(
        changes[4],
        ConversationChange::Updated {
            status: ReportedStatus::Open,
            assignee_id: None,
            priority: Some(ReportedPriority::Medium),
        }
    );
    assert_eq!(
        changes[5],
        ConversationChange::StatusChanged {
            status: ReportedStatus::Resolved
        }
    );
    assert_eq!(
        changes[6],
        ConversationChange::StatusChanged {
            status: ReportedStatus::Other("archived".to_owned())
        }
    );
}

#[test]
fn a_trace_context_round_trips_and_a_meta_without_one_decodes() {
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let with = format!(
        r#"{{"meta":{{"delivery_id":"3f1c2a9e-6b7d","received_at_ms":1785147895072,"traceparent":"{TRACEPARENT}","tracestate":"vendor=1"}},"account_id":1,"conversation_id":117,"approval_id":"1-117-4242"}}"#
    );
    let job = round_trip::<PostNote>(&with);
    assert_eq!(job.meta.traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(job.meta.tracestate.as_deref(), Some("vendor=1"));

    let without = fixture(PostNote::QUEUE, 0);
    let job = round_trip::<PostNote>(without);
    assert_eq!(job.meta.traceparent, None);
    assert_eq!(job.meta.tracestate, None);
    assert!(
        !without.contains("traceparent"),
        "an absent context is not written"
    );
}
