//! Request and response bodies of the Chatwoot Application API calls Copydesk makes, as the
//! v4.16.2 OpenAPI spec (`shared/chatwoot/application_swagger.json`) and the code describe them.
//!
//! Responses are read tolerantly: unknown fields are ignored, nullable fields are `Option`,
//! and a `null` where an object is expected reads as empty.

//! - messages: [`NewMessage`], [`Message`], [`MessageType`], pages of messages.
//! - conversations: [`Conversation`], its status, priority and meta, status changes.
//! - agents: [`Agent`], [`Team`], [`AvailabilityStatus`], [`Assignment`].

use serde::de::Deserializer;
use serde::Deserialize;

mod agent;
mod conversation;
mod message;

pub use agent::{Agent, AssignOutcome, Assignment, AvailabilityStatus, Team};
pub use conversation::{
    ContactSummary, Conversation, ConversationList, ConversationListData, ConversationMeta,
    ConversationPriority, ConversationStatus, StatusChange, CONVERSATIONS_PER_PAGE,
};
pub(crate) use conversation::{StatusChangeAnswer, TogglePriorityBody, ToggleStatusBody};
pub use message::{Message, MessageList, MessagePage, MessageType, NewMessage};

/// A JSON object of free-form attributes (custom, additional or content attributes).
pub type Attributes = serde_json::Map<String, serde_json::Value>;

/// The `content_attributes` key that carries Copydesk's idempotency key next to `source_id`:
/// some channels overwrite `source_id` with their own message id after delivery, content
/// attributes are kept as given.
pub const IDEMPOTENCY_ATTRIBUTE: &str = "copydesk_idempotency_key";

/// Reads `null` as the type's default (Chatwoot writes `null` for empty objects at times).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_note_is_outgoing_and_private_never_integer_zero() {
        let body = serde_json::to_value(NewMessage::private_note("draft")).expect("serialises");
        assert_eq!(
            body,
            serde_json::json!({"content": "draft", "message_type": "outgoing", "private": true})
        );
    }

    #[test]
    fn an_idempotent_reply_carries_the_key_twice() {
        let body = serde_json::to_value(
            NewMessage::public_reply("hi").with_idempotency_key("copydesk:a1"),
        )
        .expect("serialises");
        assert_eq!(body["private"], false);
        assert_eq!(body["source_id"], "copydesk:a1");
        assert_eq!(
            body["content_attributes"][IDEMPOTENCY_ATTRIBUTE],
            "copydesk:a1"
        );
    }

    #[test]
    fn messages_read_integer_and_string_types_and_tolerate_nulls() {
        let m: Message = serde_json::from_value(serde_json::json!({
            "id": 5, "message_type": 0, "content_attributes": null, "extra": {"x": 1}
        }))
        .expect("tolerant");
        assert_eq!(m.message_type, MessageType::Incoming);
        assert!(m.content_attributes.is_empty());
        let m: Message = serde_json::from_value(
            serde_json::json!({"id": 6, "message_type": "outgoing", "private": true}),
        )
        .expect("string type");
        assert!(m.is_private_note());
        assert!(
            serde_json::from_value::<Message>(serde_json::json!({"id": 7, "message_type": 9}))
                .is_err()
        );
    }

    #[test]
    fn the_idempotency_key_is_found_in_content_attributes_or_source_id() {
        let by_attr: Message = serde_json::from_value(serde_json::json!({
            "id": 1, "message_type": 1, "source_id": "channel-123",
            "content_attributes": {IDEMPOTENCY_ATTRIBUTE: "copydesk:x"}
        }))
        .expect("parses");
        assert_eq!(by_attr.idempotency_key(), Some("copydesk:x"));
        let by_source: Message = serde_json::from_value(
            serde_json::json!({"id": 2, "message_type": 1, "source_id": "copydesk:y"}),
        )
        .expect("parses");
        assert_eq!(by_source.idempotency_key(), Some("copydesk:y"));
        let foreign: Message = serde_json::from_value(
            serde_json::json!({"id": 3, "message_type": 1, "source_id": "wamid.1"}),
        )
        .expect("parses");
        assert_eq!(foreign.idempotency_key(), None);
    }

    #[test]
    fn unknown_availability_reads_as_offline() {
        let a: Agent =
            serde_json::from_value(serde_json::json!({"id": 1, "availability_status": "on_break"}))
                .expect("tolerant");
        assert_eq!(a.availability_status, AvailabilityStatus::Offline);
        let a: Agent =
            serde_json::from_value(serde_json::json!({"id": 1, "availability_status": "busy"}))
                .expect("parses");
        assert_eq!(a.availability_status, AvailabilityStatus::Busy);
    }

    #[test]
    fn priority_none_is_null_on_the_wire() {
        let body = serde_json::to_value(TogglePriorityBody { priority: None }).expect("serialises");
        assert_eq!(body, serde_json::json!({"priority": null}));
    }
}
