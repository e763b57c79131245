//! An approval item: the drafter's immutable document, its status and the operator's decision.

use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, Action, ApprovalId, ConversationId, MessageId, Priority};

/// A knowledge source a draft relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Document path or retriever id.
    pub source: String,
    /// Heading.
    pub title: String,
    /// Relevance 0..=1.
    pub relevance: f32,
}

/// Longest customer text stored with an approval item: longer ones are cut and marked
/// ([`DraftDoc::cap_customer_text`]).
pub const MAX_CUSTOMER_TEXT_CHARS: usize = 8_000;

/// The immutable part of an approval item: what the drafter produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftDoc {
    /// Approval id, derived from the message (`{account}-{conversation}-{message}`).
    pub id: String,
    /// Chatwoot account id.
    pub account_id: i64,
    /// Conversation display id.
    pub conversation_id: i64,
    /// The customer message answered.
    pub message_id: i64,
    /// The customer's text.
    pub customer_message: String,
    /// The proposed reply.
    pub draft: String,
    /// 0–100.
    pub confidence: u8,
    /// Recommended action.
    pub action: Action,
    /// Priority.
    pub priority: Priority,
    /// Sentiment hint (`positive`, `neutral`, `negative`, `angry`).
    pub sentiment: String,
    /// Sources cited.
    pub sources: Vec<SourceRef>,
    /// What was missing when drafting (`knowledge`, `llm`): empty when nothing was.
    pub degraded: Vec<String>,
    /// True when no draft could be made and the operator writes the reply.
    pub placeholder: bool,
    /// True when safety words were found.
    pub safety: bool,
    /// True when the contact or conversation is flagged VIP.
    pub vip: bool,
    /// Why the draft looks steered (it asks for card details or a password, promises a
    /// refund or links somewhere the knowledge does not): never recommended `send`. Empty
    /// for drafts stored before the check existed.
    #[serde(default)]
    pub suspicious: Vec<String>,
    /// Which drafter made it (`extractive`, `llm`, `placeholder`).
    pub drafter: String,
    /// Webhook delivery that started the chain.
    pub delivery_id: String,
    /// When the ingress received the webhook (Unix ms).
    pub received_at_ms: i64,
    /// When the draft was stored (Unix ms).
    pub created_at_ms: i64,
    /// W3C `traceparent` of the drafting span (absent when traces are not exported, and in
    /// drafts stored before traces existed): the operator's decision and the reply it sends
    /// continue the message's trace from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate` travelling with [`DraftDoc::traceparent`], when not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl DraftDoc {
    /// Cuts the stored customer text to
    /// [`MAX_CUSTOMER_TEXT_CHARS`] characters and marks
    /// the cut at its end (Chatwoot allows 150 000; the operator and the learning record do
    /// not need more). Returns whether it cut.
    pub fn cap_customer_text(&mut self) -> bool {
        let max = MAX_CUSTOMER_TEXT_CHARS;
        let total = self.customer_message.chars().count();
        if total <= max {
            return false;
        }
        let mut cut: String = self.customer_message.chars().take(max).collect();
        cut.push_str(&format!(" […cut: {} more characters]", total - max));
        self.customer_message = cut;
        true
    }

    /// The approval id, typed.
    pub fn approval_id(&self) -> ApprovalId {
        ApprovalId::trusted(self.id.clone())
    }

    /// The account, typed.
    pub fn account(&self) -> AccountId {
        AccountId::new(self.account_id)
    }

    /// The conversation, typed.
    pub fn conversation(&self) -> ConversationId {
        ConversationId::new(self.conversation_id)
    }

    /// The customer message answered, typed.
    pub fn message(&self) -> MessageId {
        MessageId::new(self.message_id)
    }
}

/// Where an approval item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for an operator.
    Pending,
    /// Approved as drafted; the reply is queued.
    Approved,
    /// Approved with edits; the edited reply is queued.
    Edited,
    /// Rejected (optionally with the operator's own reply queued).
    Rejected,
    /// Handed to a team.
    Escalated,
    /// A newer customer message made it obsolete; never sent.
    Superseded,
    /// The public reply was posted.
    Sent,
    /// The reply was held back at send time (conversation resolved, a human replied, or the
    /// customer wrote again).
    HeldBack,
}

impl ApprovalStatus {
    /// True when nothing more is owed for an item in this status (sent, held back,
    /// superseded, rejected, escalated): its retention runs from here.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Sent | Self::HeldBack | Self::Superseded | Self::Rejected | Self::Escalated
        )
    }

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Edited => "edited",
            Self::Rejected => "rejected",
            Self::Escalated => "escalated",
            Self::Superseded => "superseded",
            Self::Sent => "sent",
            Self::HeldBack => "held_back",
        }
    }
}

impl std::str::FromStr for ApprovalStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
            .map_err(|_| format!("unknown approval status {s:?}"))
    }
}

/// An operator's decision on a pending item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Send the draft as is.
    Approve {
        /// Who decided.
        operator: String,
    },
    /// Send an edited text.
    Edit {
        /// Who decided.
        operator: String,
        /// The text to send.
        content: String,
    },
    /// Do not send the draft; optionally send the operator's own reply.
    Reject {
        /// Who decided.
        operator: String,
        /// Why.
        reason: String,
        /// The operator's reply, if any.
        reply: Option<String>,
    },
    /// Hand the conversation to a team with a private note.
    Escalate {
        /// Who decided.
        operator: String,
        /// Team name.
        team: String,
        /// Note for the team.
        note: String,
    },
}

impl Decision {
    /// The status the item gets.
    pub fn status(&self) -> ApprovalStatus {
        match self {
            Self::Approve { .. } => ApprovalStatus::Approved,
            Self::Edit { .. } => ApprovalStatus::Edited,
            Self::Reject { .. } => ApprovalStatus::Rejected,
            Self::Escalate { .. } => ApprovalStatus::Escalated,
        }
    }

    /// Who decided.
    pub fn operator(&self) -> &str {
        match self {
            Self::Approve { operator }
            | Self::Edit { operator, .. }
            | Self::Reject { operator, .. }
            | Self::Escalate { operator, .. } => operator,
        }
    }

    /// The metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Approve { .. } => "approve",
            Self::Edit { .. } => "edit",
            Self::Reject { .. } => "reject",
            Self::Escalate { .. } => "escalate",
        }
    }
}

/// A decision with its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// When (Unix ms).
    pub decided_at_ms: i64,
}

/// An approval item as stored: the draft plus its mutable state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalItem {
    /// The draft.
    #[serde(flatten)]
    pub doc: DraftDoc,
    /// Current status.
    pub status: ApprovalStatus,
    /// The operator's decision, once made.
    pub decision: Option<DecisionRecord>,
    /// Chatwoot message id of the private note, once posted.
    pub note_id: Option<i64>,
    /// When the note was stored (Unix ms).
    pub note_posted_at_ms: Option<i64>,
    /// Chatwoot message id of the public reply, once posted.
    pub reply_message_id: Option<i64>,
    /// Why the reply was held back, if it was.
    pub held_back_reason: Option<String>,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl ApprovalItem {
    /// The text a decision says to send publicly, if any.
    pub fn reply_text(&self) -> Option<&str> {
        match &self.decision.as_ref()?.decision {
            Decision::Approve { .. } => Some(&self.doc.draft),
            Decision::Edit { content, .. } => Some(content),
            Decision::Reject { reply, .. } => reply.as_deref(),
            Decision::Escalate { .. } => None,
        }
    }
}
