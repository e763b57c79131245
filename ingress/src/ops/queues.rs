//! `GET /api/queues`: the depth of every queue (pending, running, scheduled, dead, oldest age)
//! the approval backlog, Redis memory per key kind and the reconciliation sweep's state.

use copydesk::jobs::ALL_QUEUES;
use serde_json::{json, Value};

use super::error::OpsError;
use super::OpsState;

/// Keys per kind whose `MEMORY USAGE` is asked (the rest are extrapolated).
const MEMORY_SAMPLE: u64 = 50;

/// Every queue of [`ALL_QUEUES`] in pipeline order, plus totals.
pub(crate) async fn list(state: &OpsState) -> Result<Value, OpsError> {
    let mut queues = Vec::with_capacity(ALL_QUEUES.len());
    for queue in ALL_QUEUES {
        let depth = state.queue.depth(queue).await?;
        queues.push(json!({
            "queue": queue,
            "pending": depth.pending,
            "running": depth.running,
            "scheduled": depth.scheduled,
            "dead": depth.dead,
            "oldest_age_secs": depth.oldest_age_secs,
            "idle": depth.is_idle(),
        }));
    }
    let reconcile = copydesk::reconcile::ReconcileStore::for_queue(&state.queue);
    let redis = |e: redis::RedisError| OpsError::from(copydesk::queue::QueueError::from(e));
    let last_pass = reconcile.passes(1).await.map_err(redis)?.into_iter().next();
    let missed = reconcile
        .missed(copydesk::reconcile::MAX_MISSED)
        .await
        .map_err(redis)?;
    Ok(json!({
        "queues": queues,
        // The reconciliation sweep: its latest pass and the missed customer messages.
        "reconcile": { "last_pass": last_pass, "missed": missed },
        "dead_letters": state.dead_letters.count().await?,
        "approvals_pending": state.operator.approvals().pending_count().await?,
        // Sampled: at most MEMORY_SAMPLE keys per kind ask MEMORY USAGE, the rest extrapolated.
        "memory": copydesk::retention::memory_by_kind(&state.queue, MEMORY_SAMPLE)
            .await
            .map_err(copydesk::queue::QueueError::from)?,
    }))
}
