//! The dead-letter store: jobs that failed for good, bounded by count, age and bytes
//! (trimming is counted in `copydesk_dead_letters_trimmed_total`, never silent), listable,
//! redrivable. Letters of the queues in [`crate::jobs::OWED_TO_CUSTOMERS`] (an approved reply
//! not yet sent) are never trimmed: keeping one over a bound is counted in
//! `copydesk_dead_letters_trim_refused_total`, and only `retry` or `purge` removes it.
//!
//! Keys: `Keys::dead_index()` (ZSET id → last failure ms), `Keys::dead_items()` (HASH id →
//! JSON [`DeadLetter`]) and `Keys::dead_counts` (HASH queue → count, for depth).

use std::sync::OnceLock;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use super::consumer::ConsumerState;
use super::{Keys, QueueClient, QueueError};
use crate::metrics::{DEAD_LETTERS_TRIMMED_TOTAL, DEAD_LETTERS_TRIM_REFUSED_TOTAL};

/// Why a letter was trimmed from the bounded store (the `reason` label).
const TRIM_REASONS: [&str; 3] = ["age", "count", "bytes"];

/// Publishes the trim counters at 0 (every worker process calls it: any of them may bury a
/// job, and the bounded store trims letters of every queue): trimmed for every queue and
/// reason, refused for the queues owed to customers. `increase()` sees nothing in a series
/// whose first sample is already 1.
pub fn zero_dead_letter_counters() {
    for queue in crate::jobs::ALL_QUEUES {
        for reason in TRIM_REASONS {
            metrics::counter!(DEAD_LETTERS_TRIMMED_TOTAL, "queue" => queue, "reason" => reason)
                .increment(0);
        }
    }
    for queue in crate::jobs::OWED_TO_CUSTOMERS {
        metrics::counter!(DEAD_LETTERS_TRIM_REFUSED_TOTAL, "queue" => *queue).increment(0);
    }
}

/// Largest batch `list` reads and `retry_all` redrives per round trip.
const PAGE: usize = 500;

/// One dead letter, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Dead-letter id (a ULID).
    pub id: String,
    /// Queue the job came from.
    pub queue: String,
    /// Stable job id.
    pub job_id: String,
    /// The job's JSON payload as it was queued (may be invalid JSON for undecodable entries).
    pub payload: String,
    /// The last error, with its cause chain.
    pub error: String,
    /// Runs made.
    pub attempts: u32,
    /// True when the last error was permanent (no retry could help).
    pub permanent: bool,
    /// First failed attempt, Unix ms.
    pub first_failed_at_ms: i64,
    /// Last failed attempt, Unix ms.
    pub last_failed_at_ms: i64,
    /// Times it was redriven from the dead letters before.
    pub redrives: u32,
}

/// Which dead letters `list` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only errors containing this text (case-insensitive).
    pub error_contains: Option<String>,
    /// At most this many (newest first); `None` means 100.
    pub limit: Option<usize>,
}

/// Handle on the dead-letter store.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    conn: ConnectionManager,
    keys: Keys,
}

fn script(cell: &'static OnceLock<Script>, src: &'static str) -> &'static Script {
    cell.get_or_init(|| Script::new(src))
}

fn counts_key(keys: &Keys) -> String {
    keys.dead_counts()
}

impl DeadLetters {
    /// The store under the client's prefix.
    pub fn new(client: &QueueClient) -> Self {
        Self {
            conn: client.connection(),
            keys: client.keys().clone(),
        }
    }

    /// Dead letters newest first, filtered.
    pub async fn list(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>, QueueError> {
        let limit = filter.limit.unwrap_or(100);
        let needle = filter.error_contains.as_ref().map(|s| s.to_lowercase());
        let mut conn = self.conn.clone();
        let mut out = Vec::new();
        let mut start = 0isize;
        while out.len() < limit {
            let ids: Vec<String> = conn
                .zrevrange(self.keys.dead_index(), start, start + PAGE as isize - 1)
                .await?;
            if ids.is_empty() {
                break;
            }
            start += ids.len() as isize;
            let records: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(self.keys.dead_items())
                .arg(&ids)
                .query_async(&mut conn)
                .await?;
            for record in records.into_iter().flatten() {
                let Ok(letter) = serde_json::from_str::<DeadLetter>(&record) else {
                    continue;
                };
                if filter.queue.as_ref().is_some_and(|q| *q != letter.queue) {
                    continue;
                }
                if needle
                    .as_ref()
                    .is_some_and(|n| !letter.error.to_lowercase().contains(n))
                {
                    continue;
                }
                out.push(letter);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// One dead letter.
    pub async fn get(&self, id: &str) -> Result<Option<DeadLetter>, QueueError> {
        let mut conn = self.conn.clone();
        let record: Option<String> = conn.hget(self.keys.dead_items(), id).await?;
        Ok(record.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Re-enqueues a dead letter on its queue with a fresh attempt count and removes it from
    /// the store, atomically. `NotFound` if it no longer exists.
    pub async fn retry(&self, id: &str) -> Result<(), QueueError> {
        static SCRIPT: OnceLock<Script> = OnceLock::new();
        let letter = self
            .get(id)
            .await?
            .ok_or_else(|| QueueError::NotFound(format!("dead letter {id}")))?;
        let mut conn = self.conn.clone();
        let done: i64 = script(&SCRIPT, include_str!("lua/redrive.lua"))
            .key(self.keys.stream(&letter.queue))
            .key(self.keys.dead_index())
            .key(self.keys.dead_items())
            .key(counts_key(&self.keys))
            .arg(&letter.id)
            .arg(&letter.queue)
            .arg(&letter.job_id)
            .arg(&letter.payload)
            .arg(letter.redrives + 1)
            .invoke_async(&mut conn)
            .await?;
        if done == 1 {
            Ok(())
        } else {
            Err(QueueError::NotFound(format!("dead letter {id}")))
        }
    }

    /// Redrives every dead letter (of one queue, if given) stored when the call starts, each
    /// once; returns how many. A job that fails again and is dead-lettered during the call
    /// waits for the next call, so this never loops on a letter that keeps failing.
    pub async fn retry_all(&self, queue: Option<&str>) -> Result<usize, QueueError> {
        let mut conn = self.conn.clone();
        // The snapshot: ids only, bounded by the store's own count bound.
        let ids: Vec<String> = conn.zrange(self.keys.dead_index(), 0, -1).await?;
        let mut redriven = 0;
        for batch in ids.chunks(PAGE) {
            let records: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(self.keys.dead_items())
                .arg(batch)
                .query_async(&mut conn)
                .await?;
            for (id, record) in batch.iter().zip(records) {
                let Some(record) = record else { continue };
                let wanted = match queue {
                    None => true,
                    Some(q) => serde_json::from_str::<DeadLetter>(&record)
                        .is_ok_and(|letter| letter.queue == q),
                };
                if !wanted {
                    continue;
                }
                match self.retry(id).await {
                    Ok(()) => redriven += 1,
                    Err(QueueError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(redriven)
    }

    /// Deletes one dead letter; `NotFound` if absent.
    pub async fn purge(&self, id: &str) -> Result<(), QueueError> {
        static SCRIPT: OnceLock<Script> = OnceLock::new();
        let mut conn = self.conn.clone();
        let done: i64 = script(&SCRIPT, include_str!("lua/purge.lua"))
            .key(self.keys.dead_index())
            .key(self.keys.dead_items())
            .key(counts_key(&self.keys))
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        if done == 1 {
            Ok(())
        } else {
            Err(QueueError::NotFound(format!("dead letter {id}")))
        }
    }

    /// Deletes every dead letter; returns how many there were.
    pub async fn purge_all(&self) -> Result<usize, QueueError> {
        let mut conn = self.conn.clone();
        let (count, ..): (usize, i64, i64, i64) = redis::pipe()
            .atomic()
            .zcard(self.keys.dead_index())
            .del(self.keys.dead_index())
            .del(self.keys.dead_items())
            .del(counts_key(&self.keys))
            .query_async(&mut conn)
            .await?;
        Ok(count)
    }

    /// Dead letters stored (all queues).
    pub async fn count(&self) -> Result<usize, QueueError> {
        let mut conn = self.conn.clone();
        Ok(conn.zcard(self.keys.dead_index()).await?)
    }

    /// Dead letters stored for one queue.
    pub async fn count_for(&self, queue: &str) -> Result<u64, QueueError> {
        let mut conn = self.conn.clone();
        let n: Option<i64> = conn.hget(counts_key(&self.keys), queue).await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }
}

/// Moves a claimed entry to the dead letters (only if this consumer still owns it) and trims
/// the store; returns whether it was stored.
pub(crate) async fn bury(
    state: &ConsumerState,
    entry_id: &str,
    letter: &DeadLetter,
) -> Result<bool, redis::RedisError> {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    let record = serde_json::to_string(letter).unwrap_or_default();
    let mut conn = state.conn.clone();
    type Trimmed = (i64, Vec<String>, Vec<String>, Vec<String>, Vec<String>);
    let (stored, aged, counted, sized, refused): Trimmed =
        script(&SCRIPT, include_str!("lua/dead.lua"))
            .key(&state.stream)
            .key(state.keys.dead_index())
            .key(state.keys.dead_items())
            .key(counts_key(&state.keys))
            .arg(state.group())
            .arg(entry_id)
            .arg(&letter.id)
            .arg(record)
            .arg(&letter.queue)
            .arg(letter.last_failed_at_ms)
            .arg(state.settings.dead_letter_max)
            .arg(state.settings.dead_letter_max_age.as_millis() as u64)
            .arg(&state.consumer)
            .arg(state.settings.dead_letter_max_bytes)
            .arg(crate::jobs::OWED_TO_CUSTOMERS.join(","))
            .invoke_async(&mut conn)
            .await?;
    for (queues, reason) in [aged, counted, sized].into_iter().zip(TRIM_REASONS) {
        for queue in queues {
            tracing::warn!(queue = %queue, reason, "dead letter trimmed from the bounded store");
            metrics::counter!(DEAD_LETTERS_TRIMMED_TOTAL, "queue" => queue, "reason" => reason)
                .increment(1);
        }
    }
    for queue in refused {
        tracing::warn!(queue = %queue,
            "dead letter over the store's bound kept: it is owed to a customer (retry or purge it)");
        metrics::counter!(DEAD_LETTERS_TRIM_REFUSED_TOTAL, "queue" => queue).increment(1);
    }
    Ok(stored == 1)
}
