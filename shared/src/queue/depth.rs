//! Queue depth: pending (queued, unclaimed), running (claimed), scheduled (waiting to retry),
//! dead, and the age of the oldest unfinished entry; exported as gauges.

use redis::aio::ConnectionManager;

use super::entry::now_ms;
use super::keys::GROUP;
use super::{Keys, QueueClient, QueueError};
use crate::metrics::{QUEUE_DEPTH, QUEUE_OLDEST_AGE_SECONDS};

/// How many jobs of one queue are where.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueueDepth {
    /// In the stream, not claimed by any worker.
    pub pending: u64,
    /// Claimed by a worker (buffered or running).
    pub running: u64,
    /// Waiting in the delayed set for a retry.
    pub scheduled: u64,
    /// In the dead letters.
    pub dead: u64,
    /// Age of the oldest entry in the stream, 0 when empty.
    pub oldest_age_secs: f64,
}

impl QueueDepth {
    /// True when nothing is queued, running or scheduled (dead letters aside).
    pub fn is_idle(&self) -> bool {
        self.pending == 0 && self.running == 0 && self.scheduled == 0
    }
}

impl QueueClient {
    /// The depth of `queue`.
    pub async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        Ok(read(&self.connection(), self.keys(), queue).await?)
    }

    /// Sets `copydesk_queue_depth{queue,state}` and `copydesk_queue_oldest_age_seconds{queue}`
    /// for every queue given (e.g. [`crate::jobs::ALL_QUEUES`]).
    pub async fn export_depth_metrics(&self, queues: &[&'static str]) -> Result<(), QueueError> {
        for queue in queues {
            export_one(&self.connection(), self.keys(), queue).await?;
        }
        Ok(())
    }
}

async fn read(
    conn: &ConnectionManager,
    keys: &Keys,
    queue: &str,
) -> Result<QueueDepth, redis::RedisError> {
    let mut conn = conn.clone();
    let stream = keys.stream(queue);
    let (len, scheduled, dead, oldest): (u64, u64, Option<i64>, Vec<(String, redis::Value)>) =
        redis::pipe()
            .cmd("XLEN")
            .arg(&stream)
            .cmd("ZCARD")
            .arg(keys.delayed(queue))
            .cmd("HGET")
            .arg(keys.dead_counts())
            .arg(queue)
            .cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
    let summary: Result<(u64, redis::Value, redis::Value, redis::Value), redis::RedisError> =
        redis::cmd("XPENDING")
            .arg(&stream)
            .arg(GROUP)
            .query_async(&mut conn)
            .await;
    let running = match summary {
        Ok((n, ..)) => n,
        Err(e) if e.code() == Some("NOGROUP") => 0,
        Err(e) => return Err(e),
    };
    let oldest_age_secs = oldest
        .first()
        .and_then(|(id, _)| id.split('-').next()?.parse::<i64>().ok())
        .map(|ms| ((now_ms() - ms).max(0) as f64) / 1000.0)
        .unwrap_or(0.0);
    Ok(QueueDepth {
        pending: len.saturating_sub(running),
        running,
        scheduled,
        dead: dead.unwrap_or(0).max(0) as u64,
        oldest_age_secs,
    })
}

/// Exports one queue's gauges.
pub(crate) async fn export_one(
    conn: &ConnectionManager,
    keys: &Keys,
    queue: &'static str,
) -> Result<(), redis::RedisError> {
    let depth = read(conn, keys, queue).await?;
    for (state, value) in [
        ("pending", depth.pending),
        ("running", depth.running),
        ("scheduled", depth.scheduled),
        ("dead", depth.dead),
    ] {
        metrics::gauge!(QUEUE_DEPTH, "queue" => queue, "state" => state).set(value as f64);
    }
    metrics::gauge!(QUEUE_OLDEST_AGE_SECONDS, "queue" => queue).set(depth.oldest_age_secs);
    Ok(())
}
