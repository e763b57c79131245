//! Metrics about drafts, decisions and what Redis holds, recorded under the names declared in
//! [`crate::metrics`]. Kept apart from the names so that the queue layer, which records job
//! metrics, and this module, which reads the approval store and the queue's Redis, do not
//! import each other.

use crate::approvals::{ApprovalItem, DecideOutcome, Decision, DraftDoc};
use crate::domain::Priority;
use crate::metrics::*;
use crate::queue::{Keys, QueueClient};

/// Counts a stored draft: `copydesk_drafts_total{action}`, its confidence and its flags.
pub fn draft_stored(doc: &DraftDoc) {
    metrics::counter!(DRAFTS_TOTAL, "action" => doc.action.as_str()).increment(1);
    metrics::histogram!(DRAFT_CONFIDENCE).record(f64::from(doc.confidence));
    for (flag, set) in [
        ("safety", doc.safety),
        ("vip", doc.vip),
        ("degraded", !doc.degraded.is_empty()),
        ("placeholder", doc.placeholder),
    ] {
        if set {
            metrics::counter!(DRAFT_FLAGS_TOTAL, "flag" => flag).increment(1);
        }
    }
}

/// Counts an applied operator decision: `copydesk_approvals_total{decision}`,
/// `copydesk_decisions_total{action, decision}`, the time since the draft was stored and,
/// for edits, the edit distance (`edit_distance`, as the learning record computed it).
pub fn decision_made(
    item: &ApprovalItem,
    decision: &Decision,
    decided_at_ms: i64,
    edit_distance: Option<usize>,
) {
    let label = decision.label();
    metrics::counter!(APPROVALS_TOTAL, "decision" => label).increment(1);
    metrics::counter!(DECISIONS_TOTAL, "action" => item.doc.action.as_str(), "decision" => label)
        .increment(1);
    let waited_ms = (decided_at_ms - item.doc.created_at_ms).max(0);
    metrics::histogram!(DECISION_SECONDS, "decision" => label).record(waited_ms as f64 / 1000.0);
    if let (Decision::Edit { .. }, Some(distance)) = (decision, edit_distance) {
        metrics::histogram!(EDIT_DISTANCE_CHARACTERS).record(distance as f64);
    }
}

/// Counts a public reply settled as `outcome` (`sent` or `held_back`) when the transition
/// was applied (a replay that found it already settled counts nothing).
pub fn reply_settled(transition: &DecideOutcome, outcome: &'static str) {
    if let DecideOutcome::Applied(_) = transition {
        metrics::counter!(REPLIES_TOTAL, "outcome" => outcome).increment(1);
    }
}

/// Score width of one priority in `approvals:pending` (see [`crate::approvals`]: score =
/// rank × 10¹³ + created ms).
const PRIORITY_SCORE_SPAN: i64 = 10_000_000_000_000;

/// Sets the pending-approval gauges per priority from Redis (`approvals:pending`, module docs
/// of [`crate::approvals`]): two commands per priority, whatever the backlog.
pub async fn export_approvals(
    conn: &mut redis::aio::ConnectionManager,
    keys: &Keys,
) -> Result<(), redis::RedisError> {
    let pending = keys.approvals_pending();
    let now = crate::domain::now_ms();
    for (rank, priority) in [
        Priority::Urgent,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ]
    .into_iter()
    .enumerate()
    {
        let low = rank as i64 * PRIORITY_SCORE_SPAN;
        let high = low + PRIORITY_SCORE_SPAN - 1;
        let (count, oldest): (u64, Vec<(String, f64)>) = redis::pipe()
            .cmd("ZCOUNT")
            .arg(&pending)
            .arg(low)
            .arg(high)
            .cmd("ZRANGE")
            .arg(&pending)
            .arg(low)
            .arg(high)
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(1)
            .arg("WITHSCORES")
            .query_async(conn)
            .await?;
        let age_secs = oldest
            .first()
            .map(|(_, score)| ((now - (*score as i64 - low)).max(0) as f64) / 1000.0)
            .unwrap_or(0.0);
        let label = priority.as_str();
        metrics::gauge!(APPROVALS_PENDING, "priority" => label).set(count as f64);
        metrics::gauge!(APPROVALS_OLDEST_PENDING_AGE_SECONDS, "priority" => label).set(age_secs);
    }
    Ok(())
}

/// Sets the Redis memory gauges from `INFO memory`.
pub async fn export_redis_memory(
    conn: &mut redis::aio::ConnectionManager,
) -> Result<(), redis::RedisError> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    if let Some(used) = field("used_memory") {
        metrics::gauge!(REDIS_MEMORY_USED_BYTES).set(used);
    }
    if let Some(max) = field("maxmemory") {
        metrics::gauge!(REDIS_MEMORY_MAX_BYTES).set(max);
    }
    Ok(())
}

/// Everything a worker process exports from Redis on each tick besides queue depth: pending
/// approvals and Redis memory.
pub async fn export_from_redis(queue: &QueueClient) -> Result<(), redis::RedisError> {
    let mut conn = queue.connection();
    export_approvals(&mut conn, queue.keys()).await?;
    export_redis_memory(&mut conn).await
}
