//! Settling a finished attempt in Redis: ack (`XACK`+`XDEL`), retry later (`XACK`+`XDEL`+
//! `ZADD delayed`) or dead-letter; each only if this consumer still owns the entry (`XPENDING`
//! names it), checked in the same Lua call.

use std::sync::OnceLock;
use std::time::Duration;

use backon::Retryable as _;
use redis::Script;

use super::consumer::ConsumerState;
use super::dead_letters::{bury, DeadLetter};
use super::entry::{now_ms, DelayedMember, EntryMeta};
use crate::metrics::JOBS_TOTAL;

/// The outcomes of `copydesk_jobs_total`: settled attempts, and a lease lost mid-run.
pub const JOB_OUTCOMES: [&str; 4] = ["done", "retried", "dead", "lease_lost"];

/// Publishes `copydesk_jobs_total` of `queue` at 0 for every outcome (a worker of `queue`
/// calls it): `increase()` sees nothing in a series whose first sample is already 1, so
/// without this the first dead letter of a fresh process would never alert.
pub fn zero_job_counters(queue: &'static str) {
    for outcome in JOB_OUTCOMES {
        metrics::counter!(JOBS_TOTAL, "queue" => queue, "outcome" => outcome).increment(0);
    }
}

/// Retries of one settle write after the first try, before the entry is left pending (it is
/// then reclaimed).
const WRITE_RETRIES: usize = 3;
/// First pause between tries (doubled each time, by `backon`).
const WRITE_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The pauses between tries of one settle write: 100, 200, 400 ms, then give up (`backon`).
fn write_backoff() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(WRITE_RETRY_PAUSE)
        .with_factor(2.0)
        .with_max_times(WRITE_RETRIES)
}

/// What to do with a finished attempt.
#[derive(Debug, Clone)]
pub(crate) enum Settlement {
    /// Done: ack.
    Ack,
    /// Failed: run again after `delay`.
    Retry { delay: Duration, error: String },
    /// Failed for good.
    Bury { error: String, permanent: bool },
}

/// Writes `settlement` for `meta`, retrying transient Redis errors a few times; counts the
/// outcome in `copydesk_jobs_total`.
pub(crate) async fn settle(state: &ConsumerState, meta: &EntryMeta, settlement: Settlement) {
    let outcome = match &settlement {
        Settlement::Ack => "done",
        Settlement::Retry { .. } => "retried",
        Settlement::Bury { .. } => "dead",
    };
    let written = (|| write(state, meta, &settlement))
        .retry(write_backoff())
        .sleep(tokio::time::sleep)
        .notify(|e: &redis::RedisError, pause: Duration| {
            tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "settling the job failed; retrying");
        })
        .await;
    match written {
        Ok(true) => {
            metrics::counter!(JOBS_TOTAL, "queue" => state.queue, "outcome" => outcome)
                .increment(1);
            match &settlement {
                Settlement::Ack => tracing::debug!("job done"),
                Settlement::Retry { delay, error } => {
                    tracing::warn!(delay_ms = delay.as_millis() as u64, error = %error, "job failed, retry scheduled")
                }
                Settlement::Bury { error, permanent } => {
                    tracing::error!(permanent, error = %error, "job failed for good, dead-lettered")
                }
            }
        }
        Ok(false) => {
            tracing::warn!(
                outcome,
                "entry no longer pending for us (reclaimed by another worker?); not settled"
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "settling the job failed; entry left pending for reclaim");
        }
    }
}

async fn write(
    state: &ConsumerState,
    meta: &EntryMeta,
    settlement: &Settlement,
) -> Result<bool, redis::RedisError> {
    static ACK: OnceLock<Script> = OnceLock::new();
    static RETRY: OnceLock<Script> = OnceLock::new();
    let mut conn = state.conn.clone();
    match settlement {
        Settlement::Ack => {
            let acked: i64 = ACK
                .get_or_init(|| Script::new(include_str!("lua/ack.lua")))
                .key(&state.stream)
                .arg(state.group())
                .arg(&meta.entry_id)
                .arg(&state.consumer)
                .invoke_async(&mut conn)
                .await?;
            Ok(acked == 1)
        }
        Settlement::Retry { delay, .. } => {
            let now = now_ms();
            let first = if meta.first_failed_at_ms > 0 {
                meta.first_failed_at_ms
            } else {
                now
            };
            let member = DelayedMember {
                e: &meta.entry_id,
                id: &meta.job_id,
                a: (meta.runs + 1).to_string(),
                p: &meta.payload,
                f: first.to_string(),
                r: meta.redrives.to_string(),
            };
            let member = serde_json::to_string(&member).unwrap_or_default();
            let due = now + delay.as_millis() as i64;
            let scheduled: i64 = RETRY
                .get_or_init(|| Script::new(include_str!("lua/retry.lua")))
                .key(&state.stream)
                .key(&state.delayed)
                .arg(state.group())
                .arg(&meta.entry_id)
                .arg(due)
                .arg(member)
                .arg(&state.consumer)
                .invoke_async(&mut conn)
                .await?;
            Ok(scheduled == 1)
        }
        Settlement::Bury { error, permanent } => {
            let letter = dead_letter(state, meta, error, *permanent, meta.runs + 1);
            bury(state, &meta.entry_id, &letter).await
        }
    }
}

/// A ULID, monotonic within the process, so dead letters of the same millisecond keep their
/// order in the index (ties in the ZSET are broken by member).
fn next_dead_letter_id() -> String {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut generator = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    generator
        .get_or_insert_with(ulid::Generator::new)
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
        .to_string()
}

/// The dead-letter record for `meta` after `attempts` runs.
pub(crate) fn dead_letter(
    state: &ConsumerState,
    meta: &EntryMeta,
    error: &str,
    permanent: bool,
    attempts: u32,
) -> DeadLetter {
    let now = now_ms();
    DeadLetter {
        id: next_dead_letter_id(),
        queue: state.queue.to_owned(),
        job_id: meta.job_id.clone(),
        payload: meta.payload.to_string(),
        error: error.to_owned(),
        attempts,
        permanent,
        first_failed_at_ms: if meta.first_failed_at_ms > 0 {
            meta.first_failed_at_ms
        } else {
            now
        },
        last_failed_at_ms: now,
        redrives: meta.redrives,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under a paused clock: a write that keeps failing is tried 1 + 3 times, 100 + 200 +
    /// 400 ms apart, then given up (the entry is left pending for reclaim).
    #[tokio::test(start_paused = true)]
    async fn a_failing_write_is_retried_three_times_with_doubling_pauses() {
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let pauses = std::sync::Mutex::new(Vec::new());
        let start = tokio::time::Instant::now();
        let result: Result<(), &str> = (|| async {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err("redis down")
        })
        .retry(write_backoff())
        .sleep(tokio::time::sleep)
        .notify(|_, pause| pauses.lock().expect("lock").push(pause.as_millis()))
        .await;
        assert_eq!(result, Err("redis down"));
        assert_eq!(
            tries.load(std::sync::atomic::Ordering::SeqCst),
            1 + WRITE_RETRIES
        );
        assert_eq!(*pauses.lock().expect("lock"), [100, 200, 400]);
        // The paused clock moved by the pauses (tokio rounds each sleep up to its 1 ms tick).
        let waited = start.elapsed().as_millis();
        assert!((700..=703).contains(&waited), "{waited} ms");
    }
}
