//! The typed Chatwoot webhook model, and how each event is routed to jobs.
//!
//! - [`kind`]: the fixed list of known event names ([`EventKind`]).
//! - [`timestamp`]: [`Timestamp`], which accepts ISO strings and integer or float Unix seconds.
//! - [`message`]: message events ([`WebhookMessage`], [`MessageType`], [`Sender`]).
//! - [`parts`]: what both carry ([`Sender`], [`SenderKind`], [`Reference`], [`Attributes`]).
//! - [`conversation`]: conversation events and the conversation inside message events.
//! - [`recovered`]: events rebuilt from the API for the reconciliation sweep.
//! - [`route`](mod@route): [`route()`] turns an event into jobs and dedupe keys, or a reason to ignore it.
//!
//! Parsing is lenient where Chatwoot varies (unknown fields are ignored, `null`s accepted,
//! unknown `event` names become [`WebhookEvent::Unknown`]) and strict where Copydesk needs a
//! value (ids, account, message direction): those errors name the field and its position.

pub mod conversation;
pub mod kind;
pub mod message;
pub mod parts;
pub mod recovered;
pub mod route;
pub mod timestamp;

use serde::Deserialize;

pub use conversation::{ConversationMessage, WebhookConversation, WebhookConversationMeta};
pub use kind::EventKind;
pub use message::{CsatResponse, WebhookMessage};
pub use parts::{Attributes, MessageType, Reference, Sender, SenderKind};
pub use route::{route, IgnoreReason, Route};
pub use timestamp::Timestamp;

/// A contact, as `contact_*` and `webwidget_triggered` events carry it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Contact {
    /// Contact id.
    pub id: i64,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// The account, when sent.
    #[serde(default)]
    pub account: Option<Reference>,
}

/// `conversation_typing_on` / `conversation_typing_off`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Typing {
    /// The conversation.
    pub conversation: WebhookConversation,
    /// Who is typing (a contact or an agent).
    #[serde(default)]
    pub user: Option<Sender>,
    /// True when an agent types a private note.
    #[serde(default)]
    pub is_private: bool,
}

/// `webwidget_triggered`: a visitor opened the web widget.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WidgetTriggered {
    /// The contact inbox id.
    pub id: i64,
    /// The visitor.
    pub contact: Contact,
    /// Their open conversation; `null` on a first visit.
    #[serde(default)]
    pub current_conversation: Option<WebhookConversation>,
}

/// One webhook, parsed from its raw body by [`WebhookEvent::parse`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WebhookEvent {
    /// `message_created`.
    MessageCreated(Box<WebhookMessage>),
    /// `message_updated` (e.g. a CSAT answer).
    MessageUpdated(Box<WebhookMessage>),
    /// `conversation_created`.
    ConversationCreated(Box<WebhookConversation>),
    /// `conversation_updated` (assignment, priority, labels …).
    ConversationUpdated(Box<WebhookConversation>),
    /// `conversation_status_changed`.
    ConversationStatusChanged(Box<WebhookConversation>),
    /// `contact_created` or `contact_updated`.
    Contact(EventKind, Contact),
    /// `conversation_typing_on` or `conversation_typing_off`.
    Typing(EventKind, Box<Typing>),
    /// `webwidget_triggered`.
    WidgetTriggered(Box<WidgetTriggered>),
    /// An `event` Copydesk does not know; kept so it can be answered 200 and ignored.
    Unknown {
        /// The name as sent (log it with care: it is attacker-chosen until the signature
        /// check passed, and unbounded).
        name: String,
    },
}

/// The body is not a webhook Copydesk can read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Not JSON, no `event` key, or a known event missing a field it needs.
    #[error("malformed {event}{}: {source}", if *event == "webhook" { "" } else { " webhook" })]
    Malformed {
        /// The event name, or `webhook` when unknown.
        event: &'static str,
        /// serde's message, with line and column.
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Deserialize)]
struct Envelope {
    event: String,
}

impl WebhookEvent {
    /// Parses a raw webhook body.
    ///
    /// Reads the `event` name first, then the body as that event's type, so an error names
    /// the event and the exact field and position that failed.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|source| EventError::Malformed {
                event: "webhook",
                source,
            })?;
        let Some(kind) = EventKind::from_name(&envelope.event) else {
            return Ok(Self::Unknown {
                name: envelope.event,
            });
        };
        let malformed = |source| EventError::Malformed {
            event: kind.as_str(),
            source,
        };
        Ok(match kind {
            EventKind::MessageCreated => {
                Self::MessageCreated(serde_json::from_slice(body).map_err(malformed)?)
            }
            EventKind::MessageUpdated => {
                Self::MessageUpdated(serde_json::from_slice(body).map_err(malformed)?)
            }
            EventKind::ConversationCreated => {
                Self::ConversationCreated(serde_json::from_slice(body).map_err(malformed)?)
            }
            EventKind::ConversationUpdated => {
                Self::ConversationUpdated(serde_json::from_slice(body).map_err(malformed)?)
            }
            EventKind::ConversationStatusChanged => {
                Self::ConversationStatusChanged(serde_json::from_slice(body).map_err(malformed)?)
            }
            EventKind::ContactCreated | EventKind::ContactUpdated => {
                Self::Contact(kind, serde_json::from_slice(body).map_err(malformed)?)
            }
            EventKind::ConversationTypingOn | EventKind::ConversationTypingOff => {
                Self::Typing(kind, serde_json::from_slice(body).map_err(malformed)?)
            }
            EventKind::WebwidgetTriggered => {
                Self::WidgetTriggered(serde_json::from_slice(body).map_err(malformed)?)
            }
        })
    }

    /// The event's kind; `None` for [`WebhookEvent::Unknown`].
    pub fn kind(&self) -> Option<EventKind> {
        Some(match self {
            Self::MessageCreated(_) => EventKind::MessageCreated,
            Self::MessageUpdated(_) => EventKind::MessageUpdated,
            Self::ConversationCreated(_) => EventKind::ConversationCreated,
            Self::ConversationUpdated(_) => EventKind::ConversationUpdated,
            Self::ConversationStatusChanged(_) => EventKind::ConversationStatusChanged,
            Self::Contact(kind, _) | Self::Typing(kind, _) => *kind,
            Self::WidgetTriggered(_) => EventKind::WebwidgetTriggered,
            Self::Unknown { .. } => return None,
        })
    }

    /// A metric label for the event: a known name, or `unknown`.
    pub fn label(&self) -> &'static str {
        self.kind().map_or("unknown", EventKind::as_str)
    }
}

#[cfg(test)]
mod tests;
