//! The body of `message_created` and `message_updated` webhooks (Chatwoot `Message#webhook_data`).

use serde::Deserialize;

use super::conversation::WebhookConversation;
use super::parts::{null_as_empty, Attributes, MessageType, Reference, Sender};
use super::timestamp::Timestamp;

/// A message webhook body: `message_created` or `message_updated`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WebhookMessage {
    /// Message id (unique across accounts).
    pub id: i64,
    /// The account.
    pub account: Reference,
    /// The conversation, with its display id.
    pub conversation: WebhookConversation,
    /// The inbox, when sent.
    #[serde(default)]
    pub inbox: Option<Reference>,
    /// Text; `null` for attachment-only messages.
    #[serde(default)]
    pub content: Option<String>,
    /// `text`, `input_csat`, `input_select`, …
    #[serde(default)]
    pub content_type: Option<String>,
    /// Structured extras (CSAT answers sit in `submitted_values`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub content_attributes: Attributes,
    /// Direction.
    pub message_type: MessageType,
    /// True for private notes (Copydesk's own drafts echo back as these).
    #[serde(default)]
    pub private: bool,
    /// When Chatwoot created it.
    pub created_at: Timestamp,
    /// The author; `null` for system and template messages.
    #[serde(default)]
    pub sender: Option<Sender>,
    /// The channel's id for the message, if any.
    #[serde(default)]
    pub source_id: Option<String>,
}

/// A customer's answer to the CSAT survey.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CsatResponse {
    /// Rating, 1..=5.
    pub rating: i64,
    /// Free text.
    #[serde(default)]
    pub feedback_message: Option<String>,
}

impl WebhookMessage {
    /// The CSAT answer carried by an `input_csat` message, if the customer submitted one.
    pub fn csat_response(&self) -> Option<CsatResponse> {
        if self.content_type.as_deref() != Some("input_csat") {
            return None;
        }
        let response = self
            .content_attributes
            .get("submitted_values")?
            .get("csat_survey_response")?;
        serde_json::from_value(response.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parts::SenderKind;

    #[test]
    fn message_type_parses_names_and_codes_alike() {
        let named: MessageType = serde_json::from_str("\"template\"").expect("a name");
        let coded: MessageType = serde_json::from_str("3").expect("a code");
        assert_eq!(named, coded);
        assert!(serde_json::from_str::<MessageType>("7").is_err());
        assert!(serde_json::from_str::<MessageType>("\"sideways\"").is_err());
    }

    #[test]
    fn a_sender_without_type_is_a_contact() {
        let sender: Sender = serde_json::from_str(r#"{"id":42,"name":"Jane"}"#).expect("a sender");
        assert_eq!(sender.kind(), SenderKind::Contact);
        let agent: Sender = serde_json::from_str(r#"{"id":7,"type":"user"}"#).expect("a sender");
        assert_eq!(agent.kind(), SenderKind::User);
    }
}
