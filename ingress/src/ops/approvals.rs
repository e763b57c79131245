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

use copydesk::approvals::{ApprovalItem, ApprovalStatus, Decision};
use copydesk::operator::DecisionOutcome;
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
    let pending_count = state.operator.approvals().pending_count().await?;
    // `ApprovalStore::list` sends an empty pipeline (a Redis client error) when a pending page
    // is empty, so an empty page is answered without asking it.
    let past_the_end = status == Some(ApprovalStatus::Pending) && offset as u64 >= pending_count;
    let items = if past_the_end {
        Vec::new()
    } else {
        state
            .operator
            .approvals()
            .list(status, offset, limit)
            .await?
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
    match state.operator.approvals().get(&id).await? {
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

/// `POST /api/approvals/{id}/{approve|edit|reject|escalate}` with the decision's JSON body
/// (the work is [`copydesk::operator::Operator::decide`]).
pub(crate) async fn decide(
    state: &OpsState,
    raw_id: &str,
    decision: Decision,
) -> Result<Value, OpsError> {
    let id = path_id(raw_id, "approval")?;
    match state.operator.decide(&id, decision).await? {
        DecisionOutcome::Applied(item) => Ok(item_json(&item)),
        DecisionOutcome::Conflict(status) => Err(OpsError::Conflict { id, status }),
        DecisionOutcome::NotFound => Err(OpsError::NotFound(format!("approval {id}"))),
        DecisionOutcome::UnusableDraft => Err(OpsError::Unprocessable(format!(
            "approval {id} has no usable draft to send; use /edit with your own text or /reject"
        ))),
    }
}

/// An item as answered: the stored fields plus the text that will be sent, if any.
fn item_json(item: &ApprovalItem) -> Value {
    let mut value = serde_json::to_value(item).unwrap_or_else(|_| json!({ "id": item.doc.id }));
    value["reply_text"] = item.reply_text().map_or(Value::Null, Value::from);
    value
}
