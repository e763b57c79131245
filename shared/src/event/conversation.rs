//! Conversations as webhooks carry them (Chatwoot `Conversations::EventDataPresenter`): the
//! body of `conversation_*` events, and the `conversation` object inside message events.

use serde::Deserialize;

use crate::domain::{ReportedPriority, ReportedStatus};

use super::parts::{null_as_empty, Attributes, MessageType, Reference, Sender};
use super::timestamp::Timestamp;

/// A conversation. `id` is the display id (per account), the one in `/conversations/{id}` URLs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WebhookConversation {
    /// Display id, unique within the account.
    pub id: i64,
    /// The account; top-level conversation events and nested ones both carry it.
    #[serde(default)]
    pub account: Option<Reference>,
    /// The inbox.
    #[serde(default)]
    pub inbox_id: Option<i64>,
    /// `open`, `pending`, `snoozed` or `resolved`.
    pub status: ReportedStatus,
    /// `urgent`, `high`, `medium`, `low` or none.
    #[serde(default)]
    pub priority: Option<ReportedPriority>,
    /// Conversation custom attributes.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub custom_attributes: Attributes,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Recent messages (the first one for `conversation_created`; may be empty).
    #[serde(default)]
    pub messages: Vec<ConversationMessage>,
    /// Contact, assignee and team.
    #[serde(default)]
    pub meta: Option<WebhookConversationMeta>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Last change; differs for every real change, so it tells successive updates apart.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// What an update changed: a list of `{attribute: {previous_value, current_value}}`;
    /// `null` for status changes in practice, absent elsewhere.
    #[serde(default)]
    pub changed_attributes: Option<Vec<Attributes>>,
}

impl WebhookConversation {
    /// The assignee's user id, if assigned.
    pub fn assignee_id(&self) -> Option<i64> {
        self.meta.as_ref()?.assignee.as_ref().map(|a| a.id)
    }

    /// The first incoming, public message's text, if the webhook carried one.
    pub fn first_customer_message(&self) -> Option<&str> {
        self.messages
            .iter()
            .find(|m| m.message_type == MessageType::Incoming && !m.private)
            .and_then(|m| m.content.as_deref())
    }
}

/// `meta` of a conversation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WebhookConversationMeta {
    /// The contact.
    #[serde(default)]
    pub sender: Option<Sender>,
    /// The assigned agent.
    #[serde(default)]
    pub assignee: Option<Sender>,
    /// The assigned team.
    #[serde(default)]
    pub team: Option<Reference>,
}

/// A message inside `conversation.messages` (push-event shape: integer `message_type`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConversationMessage {
    /// Message id.
    pub id: i64,
    /// Text.
    #[serde(default)]
    pub content: Option<String>,
    /// Direction (an integer here).
    pub message_type: MessageType,
    /// Private note?
    #[serde(default)]
    pub private: bool,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// `Contact`, `User`, `AgentBot` or null.
    #[serde(default)]
    pub sender_type: Option<String>,
    /// The author's id in its id space.
    #[serde(default)]
    pub sender_id: Option<i64>,
}
