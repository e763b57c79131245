//! The job types of the pipeline: one struct per queue, named as a verb phrase.
//!
//! Every job carries a [`JobMeta`] with the delivery id and the time the webhook was received,
//! so each stage can report `copydesk_pipeline_latency_seconds` exactly, and a stable
//! [`Job::job_id`] derived from its cause, so a replay or a redelivery is recognisable.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::{
    AccountId, ApprovalId, ConversationId, DeliveryId, MessageId, Priority, ReportedPriority,
    ReportedStatus,
};

/// A job kind: one queue, one payload type, a stable id.
pub trait Job: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static {
    /// The queue name: unique, snake_case, stable on the wire (also the stream key suffix).
    const QUEUE: &'static str;
    /// A stable id derived from the job's cause (message id, approval id …), never random.
    fn job_id(&self) -> String;
    /// Where the job came from.
    fn meta(&self) -> &JobMeta;
    /// Where the job came from, to stamp the trace context of the span enqueueing it.
    fn meta_mut(&mut self) -> &mut JobMeta;
    /// Jobs with the same burst key enqueued within a burst window replace each other: only
    /// the last one runs, once the burst is quiet (see `Burst` in the queue layer). `None`
    /// (the default): every job runs.
    fn burst_key(&self) -> Option<String> {
        None
    }
}

/// Provenance shared by every job: which webhook delivery caused it and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMeta {
    /// `X-Chatwoot-Delivery` of the webhook that started this chain (or a synthetic id for
    /// jobs started by operators or the scheduler).
    pub delivery_id: DeliveryId,
    /// Unix time in milliseconds when the ingress received the webhook.
    pub received_at_ms: i64,
    /// W3C `traceparent` of the span that enqueued this job (absent when traces are not
    /// exported, and in payloads written before traces existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// W3C `tracestate` travelling with [`JobMeta::traceparent`], when not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl JobMeta {
    /// Provenance of a chain started by `delivery_id` at `received_at_ms`, with no trace
    /// context yet (the queue layer stamps the current span's when the job is encoded).
    pub fn new(delivery_id: DeliveryId, received_at_ms: i64) -> Self {
        Self {
            delivery_id,
            received_at_ms,
            traceparent: None,
            tracestate: None,
        }
    }
}

/// The customer who wrote a message, as far as the pipeline needs to know them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactRef {
    /// Chatwoot contact id.
    pub id: i64,
    /// Display name, if Chatwoot has one.
    pub name: Option<String>,
    /// The contact's custom attributes (VIP flags live here).
    #[serde(default)]
    pub custom_attributes: serde_json::Map<String, serde_json::Value>,
}

/// A customer message that needs a draft: the payload of `lookup_knowledge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupKnowledge {
    /// Provenance.
    pub meta: JobMeta,
    /// Chatwoot account id.
    pub account_id: AccountId,
    /// Conversation display id (the id in `/conversations/{id}` URLs).
    pub conversation_id: ConversationId,
    /// The customer message id.
    pub message_id: MessageId,
    /// Inbox the conversation belongs to.
    pub inbox_id: Option<i64>,
    /// The customer's text.
    pub content: String,
    /// Who wrote it.
    pub contact: ContactRef,
    /// The conversation's custom attributes (VIP flags may also live here).
    #[serde(default)]
    pub conversation_attributes: serde_json::Map<String, serde_json::Value>,
    /// Message creation time in Unix seconds as Chatwoot reported it.
    pub created_at: i64,
}

impl Job for LookupKnowledge {
    const QUEUE: &'static str = "lookup_knowledge";
    fn job_id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.account_id, self.conversation_id, self.message_id
        )
    }
    fn meta(&self) -> &JobMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut JobMeta {
        &mut self.meta
    }
    /// A customer's messages in one conversation come in bursts ("hi" / "my AN-6 line leaks"
    /// / "at the carb"): one draft answers the burst.
    fn burst_key(&self) -> Option<String> {
        Some(format!("{}:{}", self.account_id, self.conversation_id))
    }
}

/// One retrieved knowledge passage with its relevance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// Where it came from (a path relative to the knowledge folder, or the retriever's id).
    pub source: String,
    /// A human title (the document's heading).
    pub title: String,
    /// The passage text.
    pub text: String,
    /// Relevance in 0..=1.
    pub relevance: f32,
}

/// A customer message plus what the knowledge stage found: the payload of `generate_draft`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateDraft {
    /// The message being answered (its meta is the chain's meta).
    pub message: LookupKnowledge,
    /// Passages found, best first.
    pub passages: Vec<Passage>,
    /// True when knowledge lookup gave up after its retries: the draft is made without it.
    pub knowledge_degraded: bool,
    /// The conversation's recent messages before this one, oldest first (best effort: empty
    /// when Chatwoot could not be asked).
    #[serde(default)]
    pub context: Vec<ContextLine>,
}

/// One earlier message of a conversation, as drafting needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextLine {
    /// True when the customer wrote it; false for agents and Copydesk's sent replies.
    pub from_customer: bool,
    /// The text.
    pub text: String,
}

impl Job for GenerateDraft {
    const QUEUE: &'static str = "generate_draft";
    fn job_id(&self) -> String {
        self.message.job_id()
    }
    fn meta(&self) -> &JobMeta {
        &self.message.meta
    }
    fn meta_mut(&mut self) -> &mut JobMeta {
        &mut self.message.meta
    }
}

/// Post an approval item's draft as a private note: the payload of `post_note`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostNote {
    /// Provenance.
    pub meta: JobMeta,
    /// Chatwoot account id.
    pub account_id: AccountId,
    /// Conversation display id.
    pub conversation_id: ConversationId,
    /// The approval item whose draft is posted.
    pub approval_id: ApprovalId,
}

impl Job for PostNote {
    const QUEUE: &'static str = "post_note";
    fn job_id(&self) -> String {
        self.approval_id.to_string()
    }
    fn meta(&self) -> &JobMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut JobMeta {
        &mut self.meta
    }
}

/// Post an approved (or edited, or operator-written) reply publicly: the payload of `send_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReply {
    /// Provenance.
    pub meta: JobMeta,
    /// Chatwoot account id.
    pub account_id: AccountId,
    /// Conversation display id.
    pub conversation_id: ConversationId,
    /// The approval item whose final text is sent.
    pub approval_id: ApprovalId,
}

impl Job for SendReply {
    const QUEUE: &'static str = "send_reply";
    fn job_id(&self) -> String {
        self.approval_id.to_string()
    }
    fn meta(&self) -> &JobMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut JobMeta {
        &mut self.meta
    }
}

/// Why a conversation is being (re)assigned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AssignReason {
    /// Chatwoot reported a new conversation; route it on its first message, if any.
    NewConversation {
        /// Text of the first customer message, when the webhook carried one.
        first_message: Option<String>,
    },
    /// A draft was made: route on its priority and the customer's text.
    Drafted {
        /// The approval item.
        approval_id: ApprovalId,
        /// Priority the drafter chose (`"urgent"`, `"high"`, `"normal"`, `"low"` on the wire).
        priority: Priority,
        /// The customer's text (intent rules match it).
        text: String,
        /// True when the contact or conversation is flagged VIP.
        vip: bool,
    },
    /// An operator escalated an approval item to a team.
    Escalation {
        /// The approval item.
        approval_id: ApprovalId,
        /// Team name as in the routing file.
        team: String,
        /// The operator's note, posted privately.
        note: String,
        /// Who escalated.
        operator: String,
    },
    /// An agent came online: retry the waiting list.
    AgentOnline,
}

/// Route a conversation to a team and agent: the payload of `assign_conversation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignConversation {
    /// Provenance.
    pub meta: JobMeta,
    /// Chatwoot account id.
    pub account_id: AccountId,
    /// Conversation display id.
    pub conversation_id: ConversationId,
    /// Why.
    pub reason: AssignReason,
}

impl Job for AssignConversation {
    const QUEUE: &'static str = "assign_conversation";
    fn job_id(&self) -> String {
        let cause = match &self.reason {
            AssignReason::NewConversation { .. } => "new".to_owned(),
            AssignReason::Drafted { approval_id, .. } => format!("draft:{approval_id}"),
            AssignReason::Escalation { approval_id, .. } => format!("escalation:{approval_id}"),
            AssignReason::AgentOnline => format!("online:{}", self.meta.delivery_id),
        };
        format!("{}:{}:{cause}", self.account_id, self.conversation_id)
    }
    fn meta(&self) -> &JobMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut JobMeta {
        &mut self.meta
    }
}

/// What happened to a conversation, as the lifecycle tracker needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConversationChange {
    /// The conversation was created.
    Created {
        /// Chatwoot status (`open`, `pending`, `snoozed`, `resolved`; unknown ones verbatim).
        status: ReportedStatus,
    },
    /// The conversation's attributes changed (assignment, priority …).
    Updated {
        /// Current status.
        status: ReportedStatus,
        /// Current assignee, if any.
        assignee_id: Option<i64>,
        /// Current priority, if any (unknown values verbatim).
        priority: Option<ReportedPriority>,
    },
    /// The status changed.
    StatusChanged {
        /// New status.
        status: ReportedStatus,
    },
    /// A customer wrote.
    CustomerMessage {
        /// Message id.
        message_id: MessageId,
    },
    /// An agent (or Copydesk on an operator's behalf) replied publicly.
    AgentReply {
        /// Message id.
        message_id: MessageId,
        /// The agent's user id.
        sender_id: Option<i64>,
    },
    /// The customer answered the CSAT survey.
    CsatAnswered {
        /// Rating 1..=5.
        rating: i64,
        /// Free text, if any.
        feedback: Option<String>,
    },
    /// Scheduled sweep: close conversations resolved long enough ago.
    AutoCloseSweep,
}

/// Record a conversation event: the payload of `track_conversation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackConversation {
    /// Provenance.
    pub meta: JobMeta,
    /// Chatwoot account id.
    pub account_id: AccountId,
    /// Conversation display id.
    pub conversation_id: ConversationId,
    /// When it happened (Unix ms), as Chatwoot reported it where it did.
    pub occurred_at_ms: i64,
    /// What happened.
    pub change: ConversationChange,
}

impl Job for TrackConversation {
    const QUEUE: &'static str = "track_conversation";
    fn job_id(&self) -> String {
        format!(
            "{}:{}:{}",
            self.account_id, self.conversation_id, self.meta.delivery_id
        )
    }
    fn meta(&self) -> &JobMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut JobMeta {
        &mut self.meta
    }
}

/// The one list of job kinds, in pipeline order: `job_kinds!(then)` expands to
/// `then!(Kind, Kind, …)` with every payload type. [`ALL_QUEUES`], the per-queue settings
/// and the workers' registry (roles, handlers, binaries) all derive from it, so a new job
/// kind is its payload type plus one line here (and its handler file in the workers).
#[macro_export]
macro_rules! job_kinds {
    ($then:ident) => {
        $then!(
            $crate::jobs::LookupKnowledge,
            $crate::jobs::GenerateDraft,
            $crate::jobs::PostNote,
            $crate::jobs::SendReply,
            $crate::jobs::AssignConversation,
            $crate::jobs::TrackConversation,
        )
    };
}

macro_rules! queue_names {
    ($($kind:ty),* $(,)?) => {
        [$(<$kind as Job>::QUEUE),*]
    };
}

macro_rules! kind_count {
    ($($kind:ty),* $(,)?) => {
        [$(<$kind as Job>::QUEUE),*].len()
    };
}

/// Queues whose dead letters are owed to a customer (an approved reply not yet sent): the
/// dead-letter store never trims them to stay within its bounds; only an operator's retry or
/// purge removes them.
pub const OWED_TO_CUSTOMERS: &[&str] = &[SendReply::QUEUE];

/// How many job kinds there are.
pub const KIND_COUNT: usize = job_kinds!(kind_count);

/// Every queue name, in pipeline order (ops tools and metrics iterate this).
pub const ALL_QUEUES: [&str; KIND_COUNT] = job_kinds!(queue_names);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_unique_and_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for queue in ALL_QUEUES {
            assert!(seen.insert(queue), "{queue} listed twice");
            assert!(
                queue.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{queue} is not snake_case"
            );
        }
        assert_eq!(ALL_QUEUES[0], LookupKnowledge::QUEUE);
    }
}
