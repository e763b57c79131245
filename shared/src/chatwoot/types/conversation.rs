//! Conversations as the API shows them, and the bodies of status and priority changes.

use serde::{Deserialize, Serialize};

use super::agent::{Agent, Team};
use super::message::Message;
use super::{null_as_default, Attributes};
use crate::domain::Priority;

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
    /// Last change, Unix seconds (Chatwoot sends a float with sub-second digits).
    #[serde(default)]
    pub updated_at: Option<f64>,
}

/// `GET .../conversations` answer (`conversation_list`): `{data: {meta, payload}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConversationList {
    /// The page.
    pub data: ConversationListData,
}

/// `data` of a [`ConversationList`].
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ConversationListData {
    /// Counts of the whole listing (`all_count`, …), kept as JSON.
    #[serde(default, deserialize_with = "null_as_default")]
    pub meta: Attributes,
    /// The page's conversations, most recent activity first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub payload: Vec<Conversation>,
}

/// Conversations per page of `GET .../conversations` (Chatwoot's
/// `CONVERSATION_RESULTS_PER_PAGE`, default 25).
pub const CONVERSATIONS_PER_PAGE: usize = 25;

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
