//! `/api/dead-letters`: list, read, redrive (one or all) and delete dead letters.

use copydesk::jobs::ALL_QUEUES;
use copydesk::queue::{DeadLetter, DeadLetterFilter};
use serde_json::{json, Value};

use super::error::OpsError;
use super::request::{path_id, Query};
use super::OpsState;

/// Dead letters per list when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 1_000;

/// `?queue=` checked against the known queues (`None` when absent).
fn queue_param(query: &Query) -> Result<Option<&'static str>, OpsError> {
    match query.get("queue") {
        None => Ok(None),
        Some(name) => ALL_QUEUES
            .iter()
            .find(|q| **q == name)
            .copied()
            .map(Some)
            .ok_or_else(|| {
                OpsError::BadRequest(format!(
                    "query parameter queue={name:?} is not one of {}",
                    ALL_QUEUES.join(", ")
                ))
            }),
    }
}

/// `GET /api/dead-letters?queue=&error=&limit=`: newest first.
pub(crate) async fn list(state: &OpsState, query: &Query) -> Result<Value, OpsError> {
    let filter = DeadLetterFilter {
        queue: queue_param(query)?.map(str::to_owned),
        error_contains: query.get("error").map(str::to_owned),
        limit: Some(query.number("limit", DEFAULT_LIMIT, MAX_LIMIT)?.max(1)),
    };
    let letters = state.dead_letters.list(&filter).await?;
    let total = state.dead_letters.count().await?;
    Ok(json!({
        "total": total,
        "items": letters.iter().map(letter_json).collect::<Vec<_>>(),
    }))
}

/// `GET /api/dead-letters/{id}`.
pub(crate) async fn get(state: &OpsState, raw_id: &str) -> Result<Value, OpsError> {
    let id = path_id(raw_id, "dead letter")?;
    match state.dead_letters.get(&id).await? {
        Some(letter) => Ok(letter_json(&letter)),
        None => Err(OpsError::NotFound(format!("dead letter {id}"))),
    }
}

/// `POST /api/dead-letters/{id}/retry`: back on its queue with a fresh attempt count.
pub(crate) async fn retry(state: &OpsState, raw_id: &str) -> Result<Value, OpsError> {
    let id = path_id(raw_id, "dead letter")?;
    state.dead_letters.retry(&id).await?;
    tracing::info!(dead_letter = %id, "dead letter redriven by an operator");
    Ok(json!({ "retried": 1, "id": id }))
}

/// `POST /api/dead-letters/retry?queue=`: every dead letter (of one queue).
pub(crate) async fn retry_all(state: &OpsState, query: &Query) -> Result<Value, OpsError> {
    let queue = queue_param(query)?;
    let retried = state.dead_letters.retry_all(queue).await?;
    tracing::info!(
        queue = queue.unwrap_or("all"),
        retried,
        "dead letters redriven by an operator"
    );
    Ok(json!({ "retried": retried, "queue": queue }))
}

/// `DELETE /api/dead-letters/{id}`.
pub(crate) async fn purge(state: &OpsState, raw_id: &str) -> Result<Value, OpsError> {
    let id = path_id(raw_id, "dead letter")?;
    state.dead_letters.purge(&id).await?;
    tracing::info!(dead_letter = %id, "dead letter deleted by an operator");
    Ok(json!({ "deleted": 1, "id": id }))
}

/// A dead letter as answered: the stored fields, plus the payload parsed as `job` when it is
/// JSON (it may not be, for an undecodable entry).
fn letter_json(letter: &DeadLetter) -> Value {
    let mut value = serde_json::to_value(letter).unwrap_or_else(|_| json!({ "id": letter.id }));
    value["job"] = serde_json::from_str(&letter.payload).unwrap_or(Value::Null);
    value
}
