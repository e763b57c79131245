//! `/api/approvals`: list and read approval items, and the four decisions (approve, edit,
//! reject, escalate).
//!
//! A decision is applied atomically by the approval store (a second decision gets 409 with the
//! current status). Then, in order: the learning record and the `decision` event are written
//! (best effort: a failure is logged, the decision stands), `copydesk_approvals_total` is
//! counted, and the follow-up job is queued — `send_reply` for approve, edit and a reject with
//! the operator's own reply, `assign_conversation` (escalation) for escalate. Follow-up jobs
//! carry a stable id (the approval id) and are deduplicated, so repeating the same decision
//! after a 503 re-queues a job that could not be queued, and never queues one twice.

use copydesk::approvals::{now_ms, ApprovalItem, ApprovalStatus, DecideOutcome, Decision};
use copydesk::events::{publish_event, EventKind};
use copydesk::jobs::{AssignConversation, AssignReason, Job, JobMeta, SendReply};
use copydesk::learning::{self, LearningRecord};
use copydesk::metrics::APPROVALS_TOTAL;
use copydesk::queue::EnqueueOutcome;
use serde_json::{json, Value};

use super::error::OpsError;
use super::request::{path_id, JsonBody, Query};
use super::OpsState;

/// Items per page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 50;
/// Largest `limit` (the store's own cap).
pub const MAX_PAGE: usize = 500;
/// Largest `offset` accepted (deep pages of non-pending items scan the whole index).
pub const MAX_OFFSET: usize = 100_000;
/// How recent a decision must be for a repeated request to re-queue its follow-up job: well
/// inside the queue's dedupe TTL (24 h), so a job that was queued is never queued again.
pub const REPLAY_WINDOW_MS: i64 = 60 * 60 * 1000;

/// `GET /api/approvals?status=pending|approved|…|all&offset=&limit=`: pending items by
/// priority then age (the default), other statuses newest first.
pub(crate) async fn list(state: &OpsState, query: &Query) -> Result<Value, OpsError> {
    let status = match query.get("status") {
        None => Some(ApprovalStatus::Pending),
        Some("all") => None,
        Some(text) => Some(text.parse::<ApprovalStatus>().map_err(|_| {
            OpsError::BadRequest(format!(
                "query parameter status={text:?} is not one of pending, approved, edited, \
                 rejected, escalated, superseded, sent, held_back, all"
            ))
        })?),
    };
    let offset = query.number("offset", 0, MAX_OFFSET)?;
    let limit = query.number("limit", DEFAULT_PAGE, MAX_PAGE)?.max(1);
    let pending_count = state.approvals.pending_count().await?;
    // `ApprovalStore::list` sends an empty pipeline (a Redis client error) when a pending page
    // is empty, so an empty page is answered without asking it.
    let past_the_end = status == Some(ApprovalStatus::Pending) && offset as u64 >= pending_count;
    let items = if past_the_end {
        Vec::new()
    } else {
        state.approvals.list(status, offset, limit).await?
    };
    let next_offset = (items.len() == limit).then_some(offset + limit);
    Ok(json!({
        "status": status.map_or("all", ApprovalStatus::as_str),
        "offset": offset,
        "limit": limit,
        "next_offset": next_offset,
        "pending_count": pending_count,
        "items": items.iter().map(item_json).collect::<Vec<_>>(),
    }))
}

/// `GET /api/approvals/{id}`.
pub(crate) async fn get(state: &OpsState, raw_id: &str) -> Result<Value, OpsError> {
    let id = path_id(raw_id, "approval")?;
    match state.approvals.get(&id).await? {
        Some(item) => Ok(item_json(&item)),
        None => Err(OpsError::NotFound(format!("approval {id}"))),
    }
}

/// The decision a `POST /api/approvals/{id}/{action}` body asks for.
pub(crate) fn parse_decision(action: &str, body: &JsonBody) -> Result<Decision, OpsError> {
    let operator = || body.required("operator");
    Ok(match action {
        "approve" => Decision::Approve {
            operator: operator()?,
        },
        "edit" => Decision::Edit {
            operator: operator()?,
            content: body.required("content")?,
        },
        "reject" => Decision::Reject {
            operator: operator()?,
            reason: body.required("reason")?,
            reply: body.optional("reply")?,
        },
        "escalate" => Decision::Escalate {
            operator: operator()?,
            team: body.required("team")?,
            note: body.required("note")?,
        },
        other => {
            return Err(OpsError::NotFound(format!(
                "action {other:?} (use approve, edit, reject or escalate)"
            )))
        }
    })
}

/// `POST /api/approvals/{id}/{approve|edit|reject|escalate}` with the decision's JSON body.
pub(crate) async fn decide(
    state: &OpsState,
    raw_id: &str,
    decision: Decision,
) -> Result<Value, OpsError> {
    let id = path_id(raw_id, "approval")?;
    if let Decision::Approve { .. } = decision {
        // The draft is immutable, so checking it before deciding is race-free.
        match state.approvals.get(&id).await? {
            None => return Err(OpsError::NotFound(format!("approval {id}"))),
            Some(item) if item.status == ApprovalStatus::Pending && unusable_draft(&item) => {
                return Err(OpsError::Unprocessable(format!(
                    "approval {id} has no usable draft to send; use /edit with your own text \
                     or /reject"
                )));
            }
            Some(_) => {}
        }
    }
    match state.approvals.decide(&id, decision.clone()).await? {
        DecideOutcome::Applied(item) => {
            let decided_at_ms = item
                .decision
                .as_ref()
                .map_or_else(now_ms, |record| record.decided_at_ms);
            tracing::info!(approval_id = %id, decision = decision.label(),
                operator = decision.operator(), "approval decided");
            metrics::counter!(APPROVALS_TOTAL, "decision" => decision.label()).increment(1);
            record(state, &item, &decision, decided_at_ms).await;
            queue_follow_up(state, &item, &decision).await?;
            Ok(item_json(&item))
        }
        DecideOutcome::Conflict(status) => {
            replay_same_decision(state, &id, &decision).await?;
            Err(OpsError::Conflict { id, status })
        }
        DecideOutcome::NotFound => Err(OpsError::NotFound(format!("approval {id}"))),
    }
}

/// True when approving would send nothing useful: a placeholder or an empty draft.
fn unusable_draft(item: &ApprovalItem) -> bool {
    item.doc.placeholder || item.doc.draft.trim().is_empty()
}

/// Writes the learning record and the `decision` event; failures are logged, not answered:
/// the decision itself is stored and must not look failed.
async fn record(state: &OpsState, item: &ApprovalItem, decision: &Decision, decided_at_ms: i64) {
    let mut conn = state.queue.connection();
    let keys = state.queue.keys();
    let learning = LearningRecord::from_decision(item, decision, decided_at_ms);
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

/// Queues what the decision asks for: a public reply, an escalation, or nothing.
async fn queue_follow_up(
    state: &OpsState,
    item: &ApprovalItem,
    decision: &Decision,
) -> Result<Option<EnqueueOutcome>, OpsError> {
    let doc = &item.doc;
    let meta = JobMeta {
        delivery_id: format!("ops:{}", doc.id),
        received_at_ms: now_ms(),
    };
    let (queue, result) = match decision {
        Decision::Escalate {
            operator,
            team,
            note,
        } => {
            let job = AssignConversation {
                meta,
                account_id: doc.account_id,
                conversation_id: doc.conversation_id,
                reason: AssignReason::Escalation {
                    approval_id: doc.id.clone(),
                    team: team.clone(),
                    note: note.clone(),
                    operator: operator.clone(),
                },
            };
            (AssignConversation::QUEUE, state.queue.enqueue(&job).await)
        }
        _ if item.reply_text().is_some() => {
            let job = SendReply {
                meta,
                account_id: doc.account_id,
                conversation_id: doc.conversation_id,
                approval_id: doc.id.clone(),
            };
            (SendReply::QUEUE, state.queue.enqueue(&job).await)
        }
        _ => return Ok(None),
    };
    match result {
        Ok(outcome) => Ok(Some(outcome)),
        Err(error) => {
            tracing::error!(approval_id = %doc.id, queue, error = %error,
                "decision stored but its follow-up job was not queued");
            Err(OpsError::FollowUpNotQueued {
                id: doc.id.clone(),
                queue,
                cause: error.to_string(),
            })
        }
    }
}

/// On a conflict, if the item already carries this same kind of decision, makes sure its
/// follow-up job is queued (deduplicated: a no-op when it was; only within
/// [`REPLAY_WINDOW_MS`] of the decision, inside the dedupe TTL). This is how a client recovers
/// from a 503 `follow_up_not_queued`: it repeats the request and gets 409 with the job queued.
async fn replay_same_decision(
    state: &OpsState,
    id: &str,
    decision: &Decision,
) -> Result<(), OpsError> {
    let Some(item) = state.approvals.get(id).await? else {
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
                queue_follow_up(state, &item, &record.decision).await?
            {
                tracing::info!(approval_id = %id, "re-queued the follow-up job of a repeated decision");
            }
        }
    }
    Ok(())
}

/// An item as answered: the stored fields plus the text that will be sent, if any.
fn item_json(item: &ApprovalItem) -> Value {
    let mut value = serde_json::to_value(item).unwrap_or_else(|_| json!({ "id": item.doc.id }));
    value["reply_text"] = item.reply_text().map_or(Value::Null, Value::from);
    value
}
