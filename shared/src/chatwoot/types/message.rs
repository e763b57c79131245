//! Messages: what Copydesk posts ([`NewMessage`]) and what the API answers ([`Message`]).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::{null_as_default, Attributes, IDEMPOTENCY_ATTRIBUTE};

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
