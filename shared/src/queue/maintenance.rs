//! The maintenance task of one worker: promote due retries (bounded Lua steps), renew the
//! lease of every held entry still owned by this consumer (`lua/renew.lua` every
//! visibility/3; an entry found owned elsewhere has its lease marked lost, which stops its
//! job), remove dead consumers, export the queue's depth. Errors are logged and retried on the
//! next tick.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redis::Script;
use tokio_util::sync::CancellationToken;

use super::consumer::ConsumerState;
use super::entry::now_ms;

/// Entries promoted per Lua step.
const PROMOTE_BATCH: usize = 100;
/// Lua steps per tick at most (so one tick moves at most 1 000 retries).
const PROMOTE_STEPS: usize = 10;
/// Ids per lease-renewal Lua call.
const RENEW_CHUNK: usize = 256;
/// How often idle consumers are looked for.
const JANITOR_EVERY: Duration = Duration::from_secs(60);
/// How often the queue's depth gauges are refreshed.
const DEPTH_EVERY: Duration = Duration::from_secs(15);
/// While promotion keeps failing (Redis down), its warning repeats at most this often.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Runs until `stop` is cancelled.
pub(crate) async fn maintenance_loop(state: Arc<ConsumerState>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(
        state
            .settings
            .maintenance_interval
            .max(Duration::from_millis(10)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lease_every = state
        .settings
        .lease_renewal_interval()
        .max(Duration::from_millis(10));
    let mut next_lease = Instant::now() + lease_every;
    let mut next_janitor = Instant::now() + JANITOR_EVERY.min(state.settings.consumer_idle_limit);
    let mut next_depth = Instant::now();
    let mut failing_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        match promote_due(&state).await {
            Ok(_) if failing_since.is_some() => {
                failing_since = None;
                tracing::info!(queue = state.queue, "promoting due retries works again");
            }
            Ok(_) => {}
            // Once per outage, then once a minute: a tick every 250 ms must not flood the log.
            Err(e) if failing_since.is_none_or(|since| since.elapsed() >= FAILURE_LOG_EVERY) => {
                failing_since = Some(Instant::now());
                tracing::warn!(queue = state.queue, error = %e, "promoting due retries failed");
            }
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= next_lease {
            next_lease = now + lease_every;
            if let Err(e) = renew_leases(&state).await {
                tracing::warn!(queue = state.queue, error = %e, "lease renewal failed");
            }
        }
        if now >= next_janitor {
            next_janitor = now + JANITOR_EVERY.min(state.settings.consumer_idle_limit);
            match remove_idle_consumers(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    queue = state.queue,
                    removed = n,
                    "removed idle consumers with nothing pending"
                ),
                Err(e) => {
                    tracing::warn!(queue = state.queue, error = %e, "consumer janitor failed")
                }
            }
        }
        if now >= next_depth {
            next_depth = now + DEPTH_EVERY;
            if let Err(e) = super::depth::export_one(&state.conn, &state.keys, state.queue).await {
                tracing::debug!(queue = state.queue, error = %e, "depth export failed");
            }
        }
    }
}

/// Moves due retries back to the stream, in bounded steps; returns how many moved.
pub(crate) async fn promote_due(state: &ConsumerState) -> Result<usize, redis::RedisError> {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    let script = SCRIPT.get_or_init(|| Script::new(include_str!("lua/promote.lua")));
    let mut conn = state.conn.clone();
    let mut moved = 0;
    for _ in 0..PROMOTE_STEPS {
        let n: usize = script
            .key(&state.stream)
            .key(&state.delayed)
            .arg(now_ms())
            .arg(PROMOTE_BATCH)
            .invoke_async(&mut conn)
            .await?;
        moved += n;
        if n < PROMOTE_BATCH {
            break;
        }
    }
    Ok(moved)
}

/// Resets the idle time of every held entry this consumer still owns, so `XAUTOCLAIM`
/// elsewhere leaves it alone; marks the others' leases lost.
async fn renew_leases(state: &ConsumerState) -> Result<(), redis::RedisError> {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    let script = SCRIPT.get_or_init(|| Script::new(include_str!("lua/renew.lua")));
    let ids = state.held_ids();
    let mut conn = state.conn.clone();
    for chunk in ids.chunks(RENEW_CHUNK) {
        let sent_at = Instant::now();
        let lost: Vec<String> = script
            .key(&state.stream)
            .arg(state.group())
            .arg(&state.consumer)
            .arg(chunk)
            .invoke_async(&mut conn)
            .await?;
        if !lost.is_empty() {
            tracing::warn!(
                queue = state.queue,
                count = lost.len(),
                "lease lost: entries are owned by another consumer now; stopping their jobs"
            );
        }
        state.renewed(chunk, sent_at, &lost);
    }
    Ok(())
}

/// Deletes consumers idle past the limit with nothing pending.
async fn remove_idle_consumers(state: &ConsumerState) -> Result<i64, redis::RedisError> {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    let mut conn = state.conn.clone();
    SCRIPT
        .get_or_init(|| Script::new(include_str!("lua/janitor.lua")))
        .key(&state.stream)
        .arg(state.group())
        .arg(state.settings.consumer_idle_limit.as_millis() as u64)
        .arg(&state.consumer)
        .invoke_async(&mut conn)
        .await
}
