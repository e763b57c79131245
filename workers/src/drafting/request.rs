//! What the drafter is asked to answer.

use copydesk::jobs::{GenerateDraft, Passage};
use serde::{Deserialize, Serialize};

/// A message with fewer content terms than this is read as a follow-up of the customer's
/// previous message ([`DraftRequest::question`]).
pub(crate) const FOLLOW_UP_TERMS: usize = 3;

/// One earlier message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextMessage {
    /// True when the customer wrote it, false for agents (and Copydesk's sent replies).
    pub from_customer: bool,
    /// The text.
    pub text: String,
}

/// Everything one draft is made from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DraftRequest {
    /// The customer message to answer.
    pub message: String,
    /// Recent messages of the conversation, oldest first (not including `message`).
    #[serde(default)]
    pub context: Vec<ContextMessage>,
    /// Knowledge passages, best first.
    #[serde(default)]
    pub passages: Vec<copydesk::jobs::Passage>,
    /// The contact's custom attributes.
    #[serde(default)]
    pub contact_attributes: serde_json::Map<String, serde_json::Value>,
    /// The conversation's custom attributes.
    #[serde(default)]
    pub conversation_attributes: serde_json::Map<String, serde_json::Value>,
    /// True when the knowledge lookup gave up: `passages` is empty for lack of knowledge,
    /// not for lack of an answer.
    #[serde(default)]
    pub knowledge_degraded: bool,
}

impl DraftRequest {
    /// A request for a bare message (no context, passages or attributes).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }

    /// The request for a `generate_draft` job, with the conversation context the runner
    /// fetched (oldest first).
    pub fn from_job(job: &GenerateDraft, context: Vec<ContextMessage>) -> Self {
        Self {
            message: job.message.content.clone(),
            context,
            passages: job.passages.clone(),
            contact_attributes: job.message.contact.custom_attributes.clone(),
            conversation_attributes: job.message.conversation_attributes.clone(),
            knowledge_degraded: job.knowledge_degraded,
        }
    }

    /// Replaces the passages.
    pub fn with_passages(mut self, passages: Vec<Passage>) -> Self {
        self.passages = passages;
        self
    }

    /// What the reply must answer: the message, or, for a short follow-up ("and in mm?",
    /// fewer than `FOLLOW_UP_TERMS` (3) content terms), the customer's previous message
    /// followed by this one, so the follow-up is read in its context.
    pub fn question(&self) -> String {
        let own = crate::knowledge::analysis::content_terms(&self.message).len();
        match self.customer_context().last() {
            Some(previous) if own < FOLLOW_UP_TERMS => format!("{previous}\n{}", self.message),
            _ => self.message.clone(),
        }
    }

    /// The customer's own recent messages, oldest first.
    pub(crate) fn customer_context(&self) -> impl Iterator<Item = &str> {
        self.context
            .iter()
            .filter(|m| m.from_customer)
            .map(|m| m.text.as_str())
    }
}
