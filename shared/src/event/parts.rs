//! What message and conversation webhooks both carry: parties ([`Sender`]), references, the
//! attribute maps and the message direction.

use serde::de::Deserializer;
use serde::Deserialize;

/// A JSON object of free-form attributes (custom attributes, content attributes): the same
/// alias the REST model uses.
pub use crate::chatwoot::types::Attributes;

/// Who a message is from or to, as Chatwoot's `message_type` says: a string at the top level
/// of a message webhook (`"incoming"`), the enum's integer inside `conversation.messages`
/// (`0`); both parse to the same variant. The same type the API client reads.
pub use crate::chatwoot::MessageType;

/// What kind of party a [`Sender`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SenderKind {
    /// A customer. `Contact#webhook_data` carries no `type` key; push data says `"contact"`.
    Contact,
    /// An agent (`"user"`).
    User,
    /// An agent bot (`"agent_bot"`).
    AgentBot,
    /// Any other `type` Chatwoot may add (e.g. Captain assistants).
    Other,
}

/// The author of a message, or a conversation's contact or assignee.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sender {
    /// Contact, user or bot id (their id spaces differ; see [`Sender::kind`]).
    pub id: i64,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email, when Chatwoot has one.
    #[serde(default)]
    pub email: Option<String>,
    /// `"user"`, `"agent_bot"`, `"contact"` or absent (a contact).
    #[serde(default, rename = "type")]
    pub sender_type: Option<String>,
    /// Contact custom attributes (VIP flags live here); empty for agents.
    #[serde(default)]
    pub custom_attributes: Attributes,
}

impl Sender {
    /// Classifies the sender by its `type` key; no key means a contact.
    pub fn kind(&self) -> SenderKind {
        match self.sender_type.as_deref() {
            None | Some("contact") => SenderKind::Contact,
            Some("user") => SenderKind::User,
            Some("agent_bot") => SenderKind::AgentBot,
            Some(_) => SenderKind::Other,
        }
    }
}

/// `{ "id": …, "name": … }` references (account, inbox).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reference {
    /// The id.
    pub id: i64,
    /// The name, when sent.
    #[serde(default)]
    pub name: Option<String>,
}

/// Treats `null` like a missing object.
pub(crate) fn null_as_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Attributes, D::Error> {
    Ok(Option::<Attributes>::deserialize(deserializer)?.unwrap_or_default())
}
