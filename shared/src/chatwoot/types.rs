//! Request and response bodies of the Chatwoot Application API calls Copydesk makes, as the
//! v4.16.2 OpenAPI spec (`shared/chatwoot/application_swagger.json`) and the code describe them.
//!
//! Responses are read tolerantly: unknown fields are ignored, nullable fields are `Option`,
//! and a `null` where an object is expected reads as empty.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::domain::Priority;

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

/// `POST .../conversations/{id}/messages` body (`conversation_message_create_payload`).
///
/// Only outgoing messages can be built: `message_type` is always the string `"outgoing"`,
/// never the integer `0`, which Chatwoot stores as a message *from the customer* (and which
/// reopens a resolved conversation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewMessage {
    content: String,
    message_type: &'static str,
    private: bool,
    /// Not in the spec's create payload, but `Messages::MessageBuilder` stores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    source_id: Option<String>,
    /// In the spec's create payload; stored as given for text messages.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    content_attributes: Attributes,
}

impl NewMessage {
    /// A private note: visible to agents only (`"outgoing"`, `private: true`).
    pub fn private_note(content: impl Into<String>) -> Self {
        Self::outgoing(content.into(), true)
    }

    /// A public reply: sent to the customer (`"outgoing"`, `private: false`).
    pub fn public_reply(content: impl Into<String>) -> Self {
        Self::outgoing(content.into(), false)
    }

    fn outgoing(content: String, private: bool) -> Self {
        Self {
            content,
            message_type: "outgoing",
            private,
            source_id: None,
            content_attributes: Attributes::new(),
        }
    }

    /// Marks the message with an idempotency key (e.g. `copydesk:<approval id>`), sent as
    /// `source_id` and as the content attribute [`IDEMPOTENCY_ATTRIBUTE`], so a retry can find
    /// it with [`Message::idempotency_key`] before posting again.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.content_attributes.insert(
            IDEMPOTENCY_ATTRIBUTE.to_owned(),
            serde_json::Value::String(key.clone()),
        );
        self.source_id = Some(key);
        self
    }

    /// The text.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// True for a private note.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// The idempotency key, if one was set.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.source_id.as_deref()
    }
}

/// Who a message is from or to. Chatwoot answers the API with the enum's integer (`0`–`3`)
/// and webhooks with its name; both read to the same variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// From the customer (`0`).
    Incoming,
    /// From an agent, a bot or Copydesk (`1`); private notes are outgoing too.
    Outgoing,
    /// A system line such as "Conversation was resolved" (`2`).
    Activity,
    /// A template, e.g. the CSAT survey (`3`).
    Template,
}

impl MessageType {
    /// Chatwoot's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incoming => "incoming",
            Self::Outgoing => "outgoing",
            Self::Activity => "activity",
            Self::Template => "template",
        }
    }

    /// Chatwoot's integer for it.
    pub fn code(self) -> u8 {
        match self {
            Self::Incoming => 0,
            Self::Outgoing => 1,
            Self::Activity => 2,
            Self::Template => 3,
        }
    }

    /// The variant for Chatwoot's integer.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Incoming,
            1 => Self::Outgoing,
            2 => Self::Activity,
            3 => Self::Template,
            _ => return None,
        })
    }

    /// The variant for Chatwoot's name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "incoming" => Self::Incoming,
            "outgoing" => Self::Outgoing,
            "activity" => Self::Activity,
            "template" => Self::Template,
            _ => return None,
        })
    }
}

impl<'de> Deserialize<'de> for MessageType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MessageTypeVisitor)
    }
}

struct MessageTypeVisitor;

impl Visitor<'_> for MessageTypeVisitor {
    type Value = MessageType;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0..=3 or \"incoming\", \"outgoing\", \"activity\", \"template\"")
    }

    fn visit_u64<E: de::Error>(self, code: u64) -> Result<MessageType, E> {
        MessageType::from_code(code)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(code), &self))
    }

    fn visit_i64<E: de::Error>(self, code: i64) -> Result<MessageType, E> {
        u64::try_from(code)
            .ok()
            .and_then(MessageType::from_code)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(code), &self))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<MessageType, E> {
        MessageType::from_name(name)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(name), &self))
    }
}

/// A message as the API answers it (the spec's `message` schema).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    /// Message id.
    pub id: i64,
    /// The text (`null` for attachment-only messages).
    #[serde(default)]
    pub content: Option<String>,
    /// Conversation display id.
    #[serde(default)]
    pub conversation_id: Option<i64>,
    /// Inbox id.
    #[serde(default)]
    pub inbox_id: Option<i64>,
    /// Incoming, outgoing, activity or template.
    pub message_type: MessageType,
    /// True for a private note.
    #[serde(default)]
    pub private: bool,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// The source id given at creation (or a channel's own message id).
    #[serde(default)]
    pub source_id: Option<String>,
    /// `text`, `input_select`, …
    #[serde(default)]
    pub content_type: Option<String>,
    /// Content attributes as stored.
    #[serde(default, deserialize_with = "null_as_default")]
    pub content_attributes: Attributes,
    /// `Contact`, `User`, `AgentBot`, …
    #[serde(default)]
    pub sender_type: Option<String>,
    /// The sender's id (contact or user).
    #[serde(default)]
    pub sender_id: Option<i64>,
    /// `sent`, `delivered`, `read`, `failed`.
    #[serde(default)]
    pub status: Option<String>,
}

impl Message {
    /// Copydesk's idempotency key if the message carries one: the content attribute
    /// [`IDEMPOTENCY_ATTRIBUTE`], else a `source_id` starting with `copydesk:`.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.content_attributes
            .get(IDEMPOTENCY_ATTRIBUTE)
            .and_then(serde_json::Value::as_str)
            .or_else(|| {
                self.source_id
                    .as_deref()
                    .filter(|s| s.starts_with("copydesk:"))
            })
    }

    /// True for a private note.
    pub fn is_private_note(&self) -> bool {
        self.private && self.message_type == MessageType::Outgoing
    }
}

/// Which page of messages to list (`GET .../messages`, Chatwoot's `MessageFinder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessagePage {
    /// The latest 20, oldest first.
    #[default]
    Latest,
    /// Up to 20 with ids below this one, oldest first.
    Before(i64),
    /// Up to 100 with ids above this one, oldest first.
    After(i64),
}

/// `GET .../messages` answer: `{meta, payload}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageList {
    /// Labels, additional attributes, contact, assignee (kept as JSON).
    #[serde(default, deserialize_with = "null_as_default")]
    pub meta: Attributes,
    /// The messages, oldest first.
    #[serde(rename = "payload", default)]
    pub messages: Vec<Message>,
}

/// A conversation's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Waiting for an agent.
    Open,
    /// Done.
    Resolved,
    /// Held by a bot.
    Pending,
    /// Hidden until a time or the customer's next message.
    Snoozed,
}

impl ConversationStatus {
    /// Chatwoot's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::Pending => "pending",
            Self::Snoozed => "snoozed",
        }
    }
}

/// A conversation's priority: exactly the values Chatwoot's code accepts. (The spec also lists
/// `"none"`, which the code rejects with a 500; "no priority" is `None`/`null`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationPriority {
    /// Most urgent.
    Urgent,
    /// High.
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
}

impl ConversationPriority {
    /// Chatwoot's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Urgent => "urgent",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

impl From<Priority> for ConversationPriority {
    /// Copydesk's `normal` is Chatwoot's `medium`.
    fn from(priority: Priority) -> Self {
        match priority {
            Priority::Urgent => Self::Urgent,
            Priority::High => Self::High,
            Priority::Normal => Self::Medium,
            Priority::Low => Self::Low,
        }
    }
}

/// An agent's effective availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AvailabilityStatus {
    /// Takes conversations.
    Online,
    /// Present but not taking new work.
    Busy,
    /// Away. Unknown values read as offline, the safe choice for routing.
    #[default]
    #[serde(other)]
    Offline,
}

impl AvailabilityStatus {
    /// Chatwoot's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Busy => "busy",
            Self::Offline => "offline",
        }
    }
}

/// An agent (the spec's `agent` schema): `GET .../agents`, team members, assignees.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Agent {
    /// User id.
    pub id: i64,
    /// Account id.
    #[serde(default)]
    pub account_id: Option<i64>,
    /// Full name.
    #[serde(default)]
    pub name: String,
    /// Display name.
    #[serde(default)]
    pub available_name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// `agent` or `administrator`.
    #[serde(default)]
    pub role: Option<String>,
    /// Effective availability (missing reads as offline).
    #[serde(default, deserialize_with = "null_as_default")]
    pub availability_status: AvailabilityStatus,
    /// Marked offline automatically when away.
    #[serde(default)]
    pub auto_offline: Option<bool>,
    /// Email confirmed.
    #[serde(default)]
    pub confirmed: Option<bool>,
}

/// A team (the spec's `team` schema).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Team {
    /// Team id.
    pub id: i64,
    /// Name, e.g. "Order Support".
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Chatwoot auto-assigns within the team when a conversation is assigned to it.
    #[serde(default)]
    pub allow_auto_assign: bool,
    /// Account id.
    #[serde(default)]
    pub account_id: Option<i64>,
    /// Whether the token's user is a member.
    #[serde(default)]
    pub is_member: Option<bool>,
}

/// The customer of a conversation (`meta.sender` of `conversation_show`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ContactSummary {
    /// Contact id.
    pub id: i64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// Phone.
    #[serde(default)]
    pub phone_number: Option<String>,
    /// The contact's custom attributes (VIP flags live here).
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_attributes: Attributes,
}

/// `meta` of `conversation_show`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ConversationMeta {
    /// The customer.
    #[serde(default)]
    pub sender: Option<ContactSummary>,
    /// The inbox's channel type, e.g. `Channel::WebWidget`.
    #[serde(default)]
    pub channel: Option<String>,
    /// The assigned agent.
    #[serde(default)]
    pub assignee: Option<Agent>,
    /// The assigned team.
    #[serde(default)]
    pub team: Option<Team>,
}

/// `GET .../conversations/{id}` answer (`conversation_show`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Conversation {
    /// Display id (the id in URLs).
    pub id: i64,
    /// Account id.
    #[serde(default)]
    pub account_id: Option<i64>,
    /// Inbox id.
    #[serde(default)]
    pub inbox_id: Option<i64>,
    /// Status.
    pub status: ConversationStatus,
    /// Priority; `None` when unset.
    #[serde(default)]
    pub priority: Option<ConversationPriority>,
    /// Custom attributes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub custom_attributes: Attributes,
    /// Additional attributes (browser, referer, …).
    #[serde(default, deserialize_with = "null_as_default")]
    pub additional_attributes: Attributes,
    /// Labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
    /// The last message only (Chatwoot's show view), or empty.
    #[serde(default, deserialize_with = "null_as_default")]
    pub messages: Vec<Message>,
    /// Contact, channel, assignee, team.
    #[serde(default, deserialize_with = "null_as_default")]
    pub meta: ConversationMeta,
    /// Unread messages.
    #[serde(default)]
    pub unread_count: Option<i64>,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: Option<i64>,
    /// Unix seconds.
    #[serde(default)]
    pub last_activity_at: Option<i64>,
    /// Unix seconds since the customer waits for an answer, if they do.
    #[serde(default)]
    pub waiting_since: Option<i64>,
}

/// `toggle_status` request body.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ToggleStatusBody {
    pub(crate) status: ConversationStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) snoozed_until: Option<i64>,
}

/// `toggle_status` answer's `payload`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StatusChange {
    /// Whether Chatwoot saved it.
    #[serde(default)]
    pub success: bool,
    /// The status now.
    pub current_status: ConversationStatus,
    /// Display id.
    pub conversation_id: i64,
}

/// `toggle_status` answer: `{meta, payload}`.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusChangeAnswer {
    pub(crate) payload: StatusChange,
}

/// `toggle_priority` request body; `null` clears the priority.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TogglePriorityBody {
    pub(crate) priority: Option<ConversationPriority>,
}

/// What to assign a conversation to (`POST .../assignments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// An agent. Chatwoot silently *unassigns* when the id is not an agent of the account.
    Agent(i64),
    /// A team. Chatwoot clears the team when the id is unknown, and drops the assignee when
    /// they are not a member of the new team.
    Team(i64),
    /// No agent (`{"assignee_id": null}`).
    Unassign,
}

impl Assignment {
    pub(crate) fn body(self) -> serde_json::Value {
        match self {
            Self::Agent(id) => serde_json::json!({ "assignee_id": id }),
            Self::Team(id) => serde_json::json!({ "team_id": id }),
            Self::Unassign => serde_json::json!({ "assignee_id": null }),
        }
    }
}

/// What a conversation is assigned to after `POST .../assignments`.
#[derive(Debug, Clone, PartialEq)]
pub enum AssignOutcome {
    /// This agent (Chatwoot answers with the agent).
    Agent(Agent),
    /// This team (Chatwoot answers with the team).
    Team(Team),
    /// Nothing: Chatwoot answered `null` (unknown or `null` id).
    Cleared,
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
