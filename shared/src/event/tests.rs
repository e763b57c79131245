//! Every fixture in `tests/fixtures/chatwoot/` parses and routes as the [`route`] table says.

use std::path::PathBuf;

use super::*;
use crate::domain::{AccountId, ConversationId, DeliveryId, MessageId};
use crate::jobs::{AssignReason, ConversationChange, LookupKnowledge, TrackConversation};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/chatwoot")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).expect("fixture exists")
}

fn parse(name: &str) -> WebhookEvent {
    WebhookEvent::parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn delivery(id: &str) -> DeliveryId {
    id.parse().expect("a valid delivery id")
}

fn routed(name: &str) -> Route {
    route(&parse(name), &delivery("d-1"), 1_785_147_400_000).expect("jobs encode")
}

fn enqueued(name: &str) -> (Vec<String>, Vec<NewJob>) {
    match routed(name) {
        Route::Enqueue { dedupe_keys, jobs } => (dedupe_keys, jobs),
        Route::Ignore(reason) => panic!("{name} was ignored: {reason}"),
    }
}

fn decode<T: serde::de::DeserializeOwned>(job: &NewJob) -> T {
    serde_json::from_str(&job.payload).expect("job payload decodes")
}

use crate::queue::NewJob;

#[test]
fn every_payload_fixture_parses_to_a_known_event() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.ends_with(".json") || name == "signature_example.json" {
            continue;
        }
        let event = parse(&name);
        let expected = name.split('.').next().unwrap_or_default();
        assert_eq!(event.label(), expected, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 10, "all payload fixtures were read");
}

#[test]
fn customer_message_goes_to_knowledge_lookup_and_tracking() {
    let (keys, jobs) = enqueued("message_created.json");
    assert_eq!(keys, ["delivery:d-1", "message_created:1:1203"]);
    assert_eq!(
        jobs.iter().map(|j| j.queue).collect::<Vec<_>>(),
        ["lookup_knowledge", "track_conversation"]
    );
    let lookup: LookupKnowledge = decode(&jobs[0]);
    assert_eq!(
        (lookup.account_id, lookup.conversation_id, lookup.message_id),
        (
            AccountId::new(1),
            ConversationId::new(117),
            MessageId::new(1203)
        )
    );
    assert_eq!(lookup.contact.id, 42);
    assert_eq!(lookup.inbox_id, Some(2));
    assert!(lookup.content.starts_with("Hi, I was charged twice"));
    assert_eq!(lookup.created_at, 1_785_147_330);
    assert_eq!(lookup.meta.delivery_id, "d-1");
    let track: TrackConversation = decode(&jobs[1]);
    assert_eq!(
        track.change,
        ConversationChange::CustomerMessage {
            message_id: MessageId::new(1203)
        }
    );
    assert_eq!(track.occurred_at_ms, 1_785_147_330_532);
}

#[test]
fn public_agent_reply_is_tracked_as_first_response_material() {
    let (keys, jobs) = enqueued("message_created.outgoing_agent.json");
    assert_eq!(keys[1], "message_created:1:1205");
    assert_eq!(jobs.len(), 1);
    let track: TrackConversation = decode(&jobs[0]);
    assert_eq!(
        track.change,
        ConversationChange::AgentReply {
            message_id: MessageId::new(1205),
            sender_id: Some(7)
        }
    );
}

#[test]
fn private_note_echo_is_ignored() {
    assert_eq!(
        routed("message_created.private_note.json"),
        Route::Ignore(IgnoreReason::PrivateNote)
    );
}

#[test]
fn conversation_created_assigns_and_tracks() {
    let (keys, jobs) = enqueued("conversation_created.json");
    assert_eq!(keys[1], "conversation_created:1:117");
    assert_eq!(
        jobs.iter().map(|j| j.queue).collect::<Vec<_>>(),
        ["assign_conversation", "track_conversation"]
    );
    let assign: crate::jobs::AssignConversation = decode(&jobs[0]);
    match assign.reason {
        AssignReason::NewConversation { first_message } => {
            assert!(first_message
                .expect("first message")
                .contains("charged twice"))
        }
        other => panic!("unexpected reason {other:?}"),
    }
    let track: TrackConversation = decode(&jobs[1]);
    assert_eq!(
        track.change,
        ConversationChange::Created {
            status: "open".into()
        }
    );
}

#[test]
fn conversation_update_is_tracked_and_keyed_per_change() {
    let (keys, jobs) = enqueued("conversation_updated.json");
    assert_eq!(keys[1], "conversation_updated:1:117:1785147522184");
    let track: TrackConversation = decode(&jobs[0]);
    assert_eq!(
        track.change,
        ConversationChange::Updated {
            status: "open".into(),
            assignee_id: Some(7),
            priority: Some("high".into())
        }
    );
    let WebhookEvent::ConversationUpdated(conversation) = parse("conversation_updated.json") else {
        panic!("not a conversation update")
    };
    assert_eq!(conversation.changed_attributes.map(|c| c.len()), Some(2));
}

#[test]
fn status_change_with_null_changed_attributes_is_tracked() {
    let (keys, jobs) = enqueued("conversation_status_changed.json");
    assert_eq!(keys[1], "conversation_status_changed:1:117:1785147895072");
    let track: TrackConversation = decode(&jobs[0]);
    assert_eq!(
        track.change,
        ConversationChange::StatusChanged {
            status: "resolved".into()
        }
    );
}

#[test]
fn csat_answer_is_tracked() {
    let (keys, jobs) = enqueued("message_updated.json");
    assert_eq!(keys[1], "message_updated:1:1206:csat:5");
    let track: TrackConversation = decode(&jobs[0]);
    assert_eq!(
        track.change,
        ConversationChange::CsatAnswered {
            rating: 5,
            feedback: Some("Quick and friendly, thanks!".into())
        }
    );
}

#[test]
fn contact_typing_and_widget_events_are_ignored() {
    for (name, kind) in [
        ("contact_created.json", EventKind::ContactCreated),
        (
            "conversation_typing_on.json",
            EventKind::ConversationTypingOn,
        ),
        ("webwidget_triggered.json", EventKind::WebwidgetTriggered),
    ] {
        assert_eq!(
            routed(name),
            Route::Ignore(IgnoreReason::UnhandledEvent(kind)),
            "{name}"
        );
    }
}

#[test]
fn unknown_event_parses_and_is_ignored() {
    let event = WebhookEvent::parse(br#"{"event":"captain_was_here","id":1}"#).expect("parses");
    assert_eq!(event.label(), "unknown");
    assert_eq!(
        route(&event, &delivery("d"), 0).expect("routes"),
        Route::Ignore(IgnoreReason::UnknownEvent)
    );
}

#[test]
fn template_and_activity_messages_are_ignored() {
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("message_created.json")).expect("json");
    for (message_type, reason) in [
        ("template", IgnoreReason::Template),
        ("activity", IgnoreReason::Activity),
    ] {
        body["message_type"] = message_type.into();
        let event = WebhookEvent::parse(body.to_string().as_bytes()).expect("parses");
        assert_eq!(
            route(&event, &delivery("d"), 0).expect("routes"),
            Route::Ignore(reason)
        );
    }
}

#[test]
fn malformed_bodies_say_what_is_wrong() {
    let err = WebhookEvent::parse(b"{\"event\":").expect_err("truncated");
    assert!(err.to_string().contains("line 1 column"), "{err}");
    let err = WebhookEvent::parse(br#"{"id":1}"#).expect_err("no event");
    assert!(err.to_string().contains("missing field `event`"), "{err}");
    let err = WebhookEvent::parse(br#"{"event":"message_created","id":"x"}"#).expect_err("bad id");
    assert!(
        err.to_string()
            .starts_with("malformed message_created webhook"),
        "{err}"
    );
    assert!(err.to_string().contains("invalid type"), "{err}");
}
