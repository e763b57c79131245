//! An operator's decision and everything that follows from it, written once for the ops API
//! and the `copydesk approvals` CLI.
//!
//! A decision is applied atomically by the approval store (a second decision conflicts with
//! the current status). Then, in order: the learning record and the `decision` event are
//! written (best effort: a failure is logged, the decision stands),
//! `copydesk_approvals_total{decision}` is counted, and the follow-up job is queued —
//! `send_reply` for approve, edit and a reject with the operator's own reply,
//! `assign_conversation` (escalation) for escalate. Follow-up jobs carry a stable id (the
//! approval id) and are deduplicated, so repeating the same decision after a failed enqueue
//! re-queues the job, and never queues one twice.

use serde_json::json;
use tracing::{Instrument as _, Span};

use crate::approvals::{
    ApprovalError, ApprovalItem, ApprovalStatus, ApprovalStore, DecideOutcome, Decision,
};
use crate::domain::{now_ms, DeliveryId};
use crate::events::{publish_event, EventKind};
use crate::jobs::{AssignConversation, AssignReason, Job, JobMeta, SendReply};
use crate::learning::{self, LearningRecord};
use crate::queue::{EnqueueOutcome, QueueClient};
use crate::telemetry::TraceContext;

/// How recent a decision must be for a repeated request to re-queue its follow-up job: well
/// inside the queue's dedupe TTL (24 h), so a job that was queued is never queued again.
pub const REPLAY_WINDOW_MS: i64 = 60 * 60 * 1000;

/// What a decision did.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionOutcome {
    /// Applied; the follow-up job (if any) is queued.
    Applied(Box<ApprovalItem>),
    /// The item is no longer pending: this is its status.
    Conflict(ApprovalStatus),
    /// No such item.
    NotFound,
    /// An approve of a placeholder or empty draft: nothing to send (edit or reject instead).
    UnusableDraft,
}

/// Why a decision could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The approval store failed.
    #[error(transparent)]
    Store(#[from] ApprovalError),
    /// The decision is stored, but its follow-up job could not be queued; repeating the same
    /// decision within [`REPLAY_WINDOW_MS`] queues it.
    #[error("the decision on {id} is stored, but its {queue} job could not be queued: {cause}")]
    FollowUpNotQueued {
        /// The approval.
        id: String,
        /// The follow-up's queue.
        queue: &'static str,
        /// Why.
        cause: String,
    },
}

/// Who makes a decision: a Chatwoot agent signed into the operator console (id and name, as
/// Chatwoot's `GET /api/v1/profile` gave them), or a name given to the ops API or the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorIdentity {
    /// The Chatwoot user id, when Chatwoot verified who this is.
    pub chatwoot_agent_id: Option<i64>,
    /// The name (control characters removed, at most [`MAX_OPERATOR_NAME`] characters).
    pub name: String,
}

/// Longest operator name kept in a decision.
pub const MAX_OPERATOR_NAME: usize = 120;

impl OperatorIdentity {
    /// A Chatwoot agent verified by the console.
    pub fn chatwoot_agent(id: i64, name: &str) -> Self {
        Self {
            chatwoot_agent_id: Some(id),
            name: clean_name(name),
        }
    }

    /// A name without a Chatwoot identity (the ops-token admin).
    pub fn named(name: &str) -> Self {
        Self {
            chatwoot_agent_id: None,
            name: clean_name(name),
        }
    }

    /// The `operator` text of the decision, its learning record, escalation note and
    /// `decision` event: `Maria Lopez (Chatwoot agent 2)`, or just the name.
    pub fn label(&self) -> String {
        match self.chatwoot_agent_id {
            Some(id) => format!("{} (Chatwoot agent {id})", self.name),
            None => self.name.clone(),
        }
    }
}

fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_OPERATOR_NAME)
        .collect();
    match cleaned.trim() {
        "" => "operator".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

/// Applies operators' decisions.
#[derive(Debug, Clone)]
pub struct Operator {
    queue: QueueClient,
    approvals: ApprovalStore,
}

impl Operator {
    /// Decisions on `queue`'s Redis.
    pub fn new(queue: QueueClient) -> Self {
        let approvals = ApprovalStore::for_queue(&queue);
        Self { queue, approvals }
    }

    /// The approval store.
    pub fn approvals(&self) -> &ApprovalStore {
        &self.approvals
    }

    /// Applies `decision` to approval `id` and queues its follow-up (module docs).
    pub async fn decide(
        &self,
        id: &str,
        decision: Decision,
    ) -> Result<DecisionOutcome, OperatorError> {
        if let Decision::Approve { .. } = decision {
            // The draft is immutable, so checking it before deciding is race-free.
            match self.approvals.get(id).await? {
                None => return Ok(DecisionOutcome::NotFound),
                Some(item) if item.status == ApprovalStatus::Pending && unusable_draft(&item) => {
                    return Ok(DecisionOutcome::UnusableDraft);
                }
                Some(_) => {}
            }
        }
        match self.approvals.decide(id, decision.clone()).await? {
            DecideOutcome::Applied(item) => {
                // The decision, its records and its follow-up job continue the trace of the
                // message the draft answers, so the reply is part of that trace.
                let span = message_trace_span("decision", &item, &decision);
                async {
                    let decided_at_ms = item
                        .decision
                        .as_ref()
                        .map_or_else(now_ms, |record| record.decided_at_ms);
                    tracing::info!(approval_id = %id, decision = decision.label(),
                        operator = decision.operator(), "approval decided");
                    self.record(&item, &decision, decided_at_ms).await;
                    self.enqueue_follow_up(&item, &decision).await
                }
                .instrument(span)
                .await?;
                Ok(DecisionOutcome::Applied(item))
            }
            DecideOutcome::Conflict(status) => {
                self.replay_same_decision(id, &decision).await?;
                Ok(DecisionOutcome::Conflict(status))
            }
            DecideOutcome::NotFound => Ok(DecisionOutcome::NotFound),
        }
    }

    /// Writes the learning record and the `decision` event; failures are logged: the decision
    /// itself is stored and must not look failed.
    async fn record(&self, item: &ApprovalItem, decision: &Decision, decided_at_ms: i64) {
        let mut conn = self.queue.connection();
        let keys = self.queue.keys();
        let learning = LearningRecord::from_decision(item, decision, decided_at_ms);
        crate::observe::decision_made(item, decision, decided_at_ms, learning.edit_distance);
        if let Err(error) = learning::append(&mut conn, keys, &learning).await {
            tracing::warn!(approval_id = %item.doc.id, %error, "learning record not written");
        }
        let event = json!({
            "approval_id": item.doc.id,
            "account_id": item.doc.account_id,
            "conversation_id": item.doc.conversation_id,
            "decision": decision.label(),
            "status": item.status.as_str(),
            "operator": decision.operator(),
            "priority": item.doc.priority.as_str(),
            "decided_at_ms": decided_at_ms,
        });
        if let Err(error) = publish_event(&mut conn, keys, EventKind::Decision, &event).await {
            tracing::warn!(approval_id = %item.doc.id, %error, "decision event not published");
        }
    }

    /// Queues what the decision asks for again (a repeated decision, the lost follow-up
    /// sweep), inside a `follow_up_requeued` span of the message's trace when there is a job
    /// to queue.
    async fn requeue_follow_up(
        &self,
        item: &ApprovalItem,
        decision: &Decision,
    ) -> Result<Option<EnqueueOutcome>, OperatorError> {
        let queues_a_job =
            matches!(decision, Decision::Escalate { .. }) || item.reply_text().is_some();
        if !queues_a_job {
            return Ok(None);
        }
        self.enqueue_follow_up(item, decision)
            .instrument(message_trace_span("follow_up_requeued", item, decision))
            .await
    }

    /// Queues what the decision asks for: a public reply, an escalation, or nothing.
    async fn enqueue_follow_up(
        &self,
        item: &ApprovalItem,
        decision: &Decision,
    ) -> Result<Option<EnqueueOutcome>, OperatorError> {
        let doc = &item.doc;
        let meta = JobMeta::new(DeliveryId::for_operator(&doc.id), now_ms());
        let (queue, result) = match decision {
            Decision::Escalate {
                operator,
                team,
                note,
            } => {
                let job = AssignConversation {
                    meta,
                    account_id: doc.account(),
                    conversation_id: doc.conversation(),
                    reason: AssignReason::Escalation {
                        approval_id: doc.approval_id(),
                        team: team.clone(),
                        note: note.clone(),
                        operator: operator.clone(),
                    },
                };
                (AssignConversation::QUEUE, self.queue.enqueue(&job).await)
            }
            _ if item.reply_text().is_some() => {
                let job = SendReply {
                    meta,
                    account_id: doc.account(),
                    conversation_id: doc.conversation(),
                    approval_id: doc.approval_id(),
                };
                (SendReply::QUEUE, self.queue.enqueue(&job).await)
            }
            _ => return Ok(None),
        };
        match result {
            Ok(outcome) => {
                // Best effort: a stale entry only makes the sweep try (deduplicated) again.
                if let Err(error) = self.approvals.follow_up_queued(&doc.id).await {
                    tracing::warn!(approval_id = %doc.id, %error, "follow-up not marked queued");
                }
                Ok(Some(outcome))
            }
            Err(error) => {
                tracing::error!(approval_id = %doc.id, queue, error = %error,
                    "decision stored but its follow-up job was not queued");
                Err(OperatorError::FollowUpNotQueued {
                    id: doc.id.clone(),
                    queue,
                    cause: error.to_string(),
                })
            }
        }
    }

    /// On a conflict, if the item already carries this same kind of decision, makes sure its
    /// follow-up job is queued (deduplicated: a no-op when it was; only within
    /// [`REPLAY_WINDOW_MS`] of the decision, inside the dedupe TTL).
    async fn replay_same_decision(
        &self,
        id: &str,
        decision: &Decision,
    ) -> Result<(), OperatorError> {
        let Some(item) = self.approvals.get(id).await? else {
            return Ok(());
        };
        let same = item.decision.as_ref().is_some_and(|record| {
            record.decision.label() == decision.label()
                && now_ms() - record.decided_at_ms < REPLAY_WINDOW_MS
        });
        let waiting = matches!(
            item.status,
            ApprovalStatus::Approved
                | ApprovalStatus::Edited
                | ApprovalStatus::Rejected
                | ApprovalStatus::Escalated
        );
        if same && waiting {
            if let Some(record) = item.decision.as_ref() {
                if let Some(EnqueueOutcome::Queued) =
                    self.requeue_follow_up(&item, &record.decision).await?
                {
                    tracing::info!(approval_id = %id, "re-queued the follow-up job of a repeated decision");
                }
            }
        }
        Ok(())
    }
}

/// An info span named `name` whose parent is the trace context stored with `item`'s draft
/// (when there is one and spans are exported).
fn message_trace_span(name: &'static str, item: &ApprovalItem, decision: &Decision) -> Span {
    let span = tracing::info_span!(
        "decision",
        otel.name = name,
        approval_id = %item.doc.id,
        decision = decision.label(),
    );
    let doc = &item.doc;
    if let Some(trace) =
        TraceContext::from_fields(doc.traceparent.as_deref(), doc.tracestate.as_deref())
    {
        trace.adopt(&span);
    }
    span
}

impl Operator {
    /// The lost follow-up sweep: every decision older than `grace` whose follow-up job
    /// (`send_reply`, escalation) is not known to be queued — its enqueue failed
    /// ([`OperatorError::FollowUpNotQueued`]) or the process stopped in between — gets it
    /// queued again. Idempotent: the job id is derived from the approval id, so a job that
    /// was queued after all is deduplicated. Returns how many were queued now.
    pub async fn requeue_lost_follow_ups(
        &self,
        grace: std::time::Duration,
    ) -> Result<usize, OperatorError> {
        let before = now_ms().saturating_sub(grace.as_millis() as i64);
        let ids = self.approvals.awaiting_follow_up(before, 500).await?;
        let mut queued = 0;
        for id in ids {
            let item = match self.approvals.get(&id).await? {
                Some(item) => item,
                None => {
                    self.approvals.follow_up_queued(&id).await?;
                    continue;
                }
            };
            let owed = matches!(
                item.status,
                ApprovalStatus::Approved
                    | ApprovalStatus::Edited
                    | ApprovalStatus::Rejected
                    | ApprovalStatus::Escalated
            );
            match item.decision.as_ref() {
                Some(record) if owed => {
                    if let Some(EnqueueOutcome::Queued) =
                        self.requeue_follow_up(&item, &record.decision).await?
                    {
                        queued += 1;
                        tracing::warn!(approval_id = %id, "re-queued a lost follow-up job");
                    }
                }
                _ => self.approvals.follow_up_queued(&id).await?,
            }
        }
        Ok(queued)
    }
}

/// True when approving would send nothing useful: a placeholder or an empty draft.
pub fn unusable_draft(item: &ApprovalItem) -> bool {
    item.doc.placeholder || item.doc.draft.trim().is_empty()
}
