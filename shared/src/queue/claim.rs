//! The claim loop: reserve free slots, reclaim orphans (`XAUTOCLAIM`, min-idle = visibility
//! timeout) when due, else `XREADGROUP … COUNT <free> BLOCK` on a dedicated connection; decode
//! each entry and hand it to the worker, or dead-letter it if it is undecodable or has crashed
//! its workers too often. Redis errors never end the loop: it backs off 100 ms doubling to 5 s,
//! re-creates the group on `NOGROUP` and reconnects.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis_core::task::builder::TaskBuilder;
use apalis_core::task::task_id::TaskId;
use apalis_core::task::Task;
use backon::BackoffBuilder as _;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::AsyncConnectionConfig;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::consumer::ConsumerState;
use super::dead_letters::bury;
use super::entry::{self, EntryMeta};
use super::settings::CLAIM_TIMEOUT_MARGIN;
use super::settle::dead_letter;
use super::JobAttempt;
use crate::jobs::Job;
use crate::metrics::JOBS_TOTAL;

/// First pause after a Redis error.
const ERROR_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause after repeated Redis errors.
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The pauses after consecutive Redis errors: 100 ms doubling to 5 s, forever (`backon`).
fn error_backoff() -> backon::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(ERROR_BACKOFF_MIN)
        .with_max_delay(ERROR_BACKOFF_MAX)
        .with_factor(2.0)
        .without_max_times()
        .build()
}

/// An entry claimed from the stream, with its delivery count when it was reclaimed and when
/// the claim's answer arrived (the start of its lease).
struct Claimed {
    entry: StreamId,
    deliveries: Option<u64>,
    at: Instant,
}

/// Runs until `stop` is cancelled, sending decoded tasks on `tx`.
pub(crate) async fn claim_loop<J: Job>(
    state: Arc<ConsumerState>,
    tx: mpsc::Sender<Task<J>>,
    stop: CancellationToken,
) {
    let mut claimer = Claimer {
        conn: None,
        group_ready: false,
        cursor: "0-0".to_owned(),
        next_reclaim: Instant::now(),
    };
    let mut backoff = error_backoff();
    while !stop.is_cancelled() {
        let mut slots = tokio::select! {
            slot = state.slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = stop.cancelled() => break,
        };
        while slots.num_permits() < state.settings.max_in_flight {
            match state.slots.clone().try_acquire_owned() {
                Ok(more) => slots.merge(more),
                Err(_) => break,
            }
        }
        match claimer.claim(&state, slots.num_permits()).await {
            Ok(entries) => {
                backoff = error_backoff();
                for claimed in entries {
                    let Some(slot) = slots.split(1) else { break };
                    if !dispatch(&state, &tx, claimed, slot).await {
                        return;
                    }
                }
            }
            Err(e) => {
                drop(slots);
                if e.code() == Some("NOGROUP") {
                    tracing::warn!(
                        queue = state.queue,
                        "consumer group missing; re-creating it"
                    );
                    claimer.group_ready = false;
                }
                let pause = backoff.next().unwrap_or(ERROR_BACKOFF_MAX);
                if e.code() != Some("NOGROUP") {
                    tracing::warn!(queue = state.queue, error = %e, backoff_ms = pause.as_millis() as u64, "claim failed; backing off");
                    claimer.conn = None;
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop.cancelled() => break,
                }
            }
        }
    }
}

struct Claimer {
    conn: Option<MultiplexedConnection>,
    group_ready: bool,
    cursor: String,
    next_reclaim: Instant,
}

impl Claimer {
    async fn claim(
        &mut self,
        state: &ConsumerState,
        count: usize,
    ) -> Result<Vec<Claimed>, redis::RedisError> {
        if !self.group_ready {
            ensure_group(state).await?;
            self.group_ready = true;
        }
        if Instant::now() >= self.next_reclaim {
            let reclaimed = self.reclaim(state, count).await?;
            if !reclaimed.is_empty() {
                return Ok(reclaimed);
            }
        }
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(connect(state).await?),
        };
        let block_ms = state.settings.effective_block().as_millis() as u64;
        let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(state.group())
            .arg(&state.consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&state.stream)
            .arg(">")
            .query_async(conn)
            .await?;
        let at = Instant::now();
        Ok(reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .map(|entry| Claimed {
                entry,
                deliveries: None,
                at,
            })
            .collect())
    }

    /// `XAUTOCLAIM` entries idle past the visibility timeout, with their delivery counts.
    async fn reclaim(
        &mut self,
        state: &ConsumerState,
        count: usize,
    ) -> Result<Vec<Claimed>, redis::RedisError> {
        let mut conn = state.conn.clone();
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&state.stream)
            .arg(state.group())
            .arg(&state.consumer)
            .arg(state.settings.visibility_timeout.as_millis() as u64)
            .arg(&self.cursor)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await?;
        let at = Instant::now();
        self.cursor = reply.next_stream_id;
        if self.cursor == "0-0" {
            self.next_reclaim = Instant::now() + state.settings.reclaim_interval;
        }
        let claimed: Vec<StreamId> = reply
            .claimed
            .into_iter()
            .filter(|e| !state.holds(&e.id))
            .collect();
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        tracing::info!(
            queue = state.queue,
            count = claimed.len(),
            "reclaimed entries idle past the visibility timeout"
        );
        let first = claimed
            .iter()
            .map(|e| e.id.as_str())
            .min_by(|a, b| cmp_ids(a, b))
            .unwrap_or("-")
            .to_owned();
        let last = claimed
            .iter()
            .map(|e| e.id.as_str())
            .max_by(|a, b| cmp_ids(a, b))
            .unwrap_or("+")
            .to_owned();
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(&state.stream)
            .arg(state.group())
            .arg(first)
            .arg(last)
            .arg(claimed.len() + state.settings.max_in_flight)
            .arg(&state.consumer)
            .query_async(&mut conn)
            .await?;
        Ok(claimed
            .into_iter()
            .map(|entry| {
                let deliveries = pending.iter().find(|p| p.0 == entry.id).map(|p| p.3);
                Claimed {
                    entry,
                    deliveries,
                    at,
                }
            })
            .collect())
    }
}

/// Orders stream ids (`ms-seq`) numerically.
fn cmp_ids(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |id: &str| {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            seq.parse::<u64>().unwrap_or(0),
        )
    };
    parse(a).cmp(&parse(b))
}

/// `XGROUP CREATE … 0 MKSTREAM`, tolerating an existing group. From `0`, not `$`: jobs queued
/// before the first worker started are unfinished work (acked entries are deleted).
pub(crate) async fn ensure_group(state: &ConsumerState) -> Result<(), redis::RedisError> {
    let mut conn = state.conn.clone();
    let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&state.stream)
        .arg(state.group())
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => Err(e),
        _ => Ok(()),
    }
}

/// The dedicated claim connection: its response timeout exceeds BLOCK, and nothing else
/// waits behind a BLOCKing read on it.
async fn connect(state: &ConsumerState) -> Result<MultiplexedConnection, redis::RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_response_timeout(Some(
            state.settings.effective_block() + CLAIM_TIMEOUT_MARGIN,
        ))
        .set_connection_timeout(Some(Duration::from_secs(2)));
    let mut conn = state
        .redis
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut conn)
        .await?;
    state.claim_client_id.store(id, Ordering::SeqCst);
    Ok(conn)
}

/// Decodes one entry and sends it to the worker (or dead-letters it). False when the worker
/// is gone.
async fn dispatch<J: Job>(
    state: &ConsumerState,
    tx: &mpsc::Sender<Task<J>>,
    claimed: Claimed,
    slot: OwnedSemaphorePermit,
) -> bool {
    let entry_id = claimed.entry.id.clone();
    let meta = match entry::parse(&entry_id, &claimed.entry.map) {
        Ok(meta) => meta,
        Err(bad) => {
            let meta = EntryMeta {
                entry_id: bad.entry_id,
                job_id: bad.job_id,
                runs: 0,
                payload: bad.payload.into(),
                first_failed_at_ms: 0,
                redrives: 0,
            };
            bury_now(state, &meta, &bad.reason, 0).await;
            return true;
        }
    };
    if let Some(deliveries) = claimed
        .deliveries
        .filter(|d| *d > u64::from(state.settings.max_deliveries))
    {
        let error =
            format!("delivered {deliveries} times without finishing (crashed its workers?)");
        bury_now(state, &meta, &error, meta.runs + 1).await;
        return true;
    }
    let job: J = match serde_json::from_str(&meta.payload) {
        Ok(job) => job,
        Err(e) => {
            bury_now(
                state,
                &meta,
                &format!("undecodable payload for {}: {e}", state.queue),
                meta.runs,
            )
            .await;
            return true;
        }
    };
    if !state.hold(&entry_id, slot, claimed.at) {
        return true;
    }
    crate::metrics::job_claimed(state.queue, &entry_id, claimed.deliveries.is_none());
    let attempt = JobAttempt {
        attempt: meta.runs + 1,
        max_attempts: state.max_attempts,
        redelivered: claimed.deliveries.is_some_and(|d| d > 1) || meta.redrives > 0,
    };
    let task = TaskBuilder::new(job)
        .task_id(TaskId::String(meta.job_id.clone()))
        .attempt(meta.runs as usize)
        .max_attempts(state.max_attempts as usize)
        .data(attempt)
        .data(meta)
        .build();
    if tx.send(task).await.is_err() {
        state.release(&entry_id);
        return false;
    }
    true
}

async fn bury_now(state: &ConsumerState, meta: &EntryMeta, error: &str, attempts: u32) {
    let letter = dead_letter(state, meta, error, true, attempts);
    match bury(state, &meta.entry_id, &letter).await {
        Ok(_) => {
            tracing::error!(queue = state.queue, entry = %meta.entry_id, job.id = %meta.job_id, error, "entry dead-lettered without running");
            metrics::counter!(JOBS_TOTAL, "queue" => state.queue, "outcome" => "dead").increment(1);
        }
        Err(e) => {
            tracing::warn!(queue = state.queue, entry = %meta.entry_id, error = %e, "dead-lettering failed; entry stays pending");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_error_pauses_double_from_100_ms_and_stay_at_5_s() {
        let pauses: Vec<Duration> = error_backoff().take(8).collect();
        let ms: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(
            error_backoff().nth(1000),
            Some(ERROR_BACKOFF_MAX),
            "forever"
        );
    }
}
