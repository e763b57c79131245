//! The producer side of the queue layer: connect, enqueue with dedupe, ping.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::{EnqueueOutcome, Keys, QueueError};
use crate::config::RedisConfig;
use crate::jobs::Job;

/// How long a dedupe key lives by default: Chatwoot's duplicate deliveries arrive within
/// seconds, a day is a wide margin at ~165 B per key.
pub const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Response timeout of the shared connection; longer than any Redis stall we ride out.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connect timeout of the shared connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A job ready to be written: the queue, its stable id and its JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Queue name (`Job::QUEUE`).
    pub queue: &'static str,
    /// Stable id (`Job::job_id`).
    pub job_id: String,
    /// The job as JSON.
    pub payload: String,
    /// `Job::burst_key`: jobs with the same key replace each other within a burst window,
    /// when the client has one ([`QueueClient::with_burst`]).
    pub burst_key: Option<String>,
}

/// How a burst of jobs with one burst key becomes one job: each waits `window` in the delayed
/// set, a later one replaces it and restarts the wait, up to `cap` after the burst's first
/// job (then it runs, and a later job starts a new burst). graphile-worker's `job_key`
/// replace mode and BullMQ's debounce work the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    /// Quiet time after the last job before the burst runs.
    pub window: Duration,
    /// Longest a burst waits after its first job.
    pub cap: Duration,
}

impl Burst {
    /// Off: every job runs as soon as it is enqueued.
    pub const OFF: Self = Self {
        window: Duration::ZERO,
        cap: Duration::ZERO,
    };

    /// `COPYDESK_BURST_WINDOW_MS` (default 2 000; 0 turns bursts off) and
    /// `COPYDESK_BURST_CAP_MS` (default 8 000; at least the window).
    pub fn from_env(
        env: &dyn crate::config::EnvSource,
    ) -> Result<Self, crate::config::ConfigError> {
        let window =
            crate::config::millis_or(env, "COPYDESK_BURST_WINDOW_MS", Duration::from_secs(2))?;
        let cap = crate::config::millis_or(env, "COPYDESK_BURST_CAP_MS", Duration::from_secs(8))?;
        if cap < window {
            return Err(crate::config::ConfigError::Invalid {
                var: "COPYDESK_BURST_CAP_MS",
                value: cap.as_millis().to_string(),
                reason: format!(
                    "must be at least COPYDESK_BURST_WINDOW_MS ({} ms)",
                    window.as_millis()
                ),
            });
        }
        Ok(Self { window, cap })
    }

    /// True when bursts are on.
    pub fn is_on(&self) -> bool {
        !self.window.is_zero()
    }
}

impl NewJob {
    /// Encodes a typed job; inside an exported span the job carries that span's trace
    /// context (see `telemetry::otel`), otherwise the one it came with.
    pub fn encode<J: Job>(job: &J) -> Result<Self, QueueError> {
        let mut stamped = job.clone();
        let job = if crate::telemetry::stamp_trace_context(stamped.meta_mut()) {
            &stamped
        } else {
            job
        };
        let payload = serde_json::to_string(job).map_err(|source| QueueError::Codec {
            queue: J::QUEUE.to_owned(),
            source,
        })?;
        Ok(Self {
            queue: J::QUEUE,
            job_id: job.job_id(),
            payload,
            burst_key: job.burst_key(),
        })
    }
}

/// A cheap-to-clone handle on the queues: one multiplexed, auto-reconnecting connection.
#[derive(Clone)]
pub struct QueueClient {
    conn: ConnectionManager,
    client: redis::Client,
    keys: Keys,
    dedupe_ttl: Duration,
    url: String,
    retention: Duration,
    burst: Option<Burst>,
}

impl std::fmt::Debug for QueueClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueClient")
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl QueueClient {
    /// Builds the client without waiting for Redis: the connection is made on first use and
    /// re-made after failures, so a process can start (and answer `/readyz` 503) while Redis
    /// is down.
    pub async fn build(config: &RedisConfig) -> Result<Self, QueueError> {
        let client = config.client()?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)?;
        Ok(Self {
            conn,
            client,
            keys: Keys::new(config.key_prefix.clone()),
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
            url: config.url.clone(),
            retention: config.retention,
            burst: None,
        })
    }

    /// How long decided approvals, learning records and events are kept
    /// ([`RedisConfig::retention`]).
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Enqueues jobs that have a burst key as bursts (see [`Burst`]); a zero window turns
    /// bursts off.
    pub fn with_burst(mut self, burst: Burst) -> Self {
        self.burst = (!burst.window.is_zero()).then_some(burst);
        self
    }

    /// Key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The Redis URL (without change; may hold a password, never log it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The Redis client (TLS set up for `rediss://`), for components that open connections of
    /// their own (blocking reads, event streams).
    pub fn redis_client(&self) -> redis::Client {
        self.client.clone()
    }

    /// The shared connection, for stores built on the same Redis (approvals, dead letters).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `PING`, for readiness probes (wrap it in a timeout).
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Enqueues one job, deduplicated on `{queue}:{job_id}`.
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<EnqueueOutcome, QueueError> {
        let new = NewJob::encode(job)?;
        let dedupe = format!("{}:{}", new.queue, new.job_id);
        self.enqueue_batch(&[dedupe], std::slice::from_ref(&new))
            .await
    }

    /// Enqueues `jobs` (possibly on several queues) only if none of `dedupe_keys` was seen
    /// within the dedupe TTL; all-or-nothing, in one Lua call.
    pub async fn enqueue_batch(
        &self,
        dedupe_keys: &[String],
        jobs: &[NewJob],
    ) -> Result<EnqueueOutcome, QueueError> {
        static SCRIPT: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
        let script = SCRIPT.get_or_init(|| Script::new(include_str!("lua/enqueue.lua")));
        let mut invocation = script.prepare_invoke();
        for key in dedupe_keys {
            invocation.key(self.keys.dedupe(key));
        }
        // Per job: its stream, its delayed set and its burst key (unused without a burst).
        for job in jobs {
            invocation.key(self.keys.stream(job.queue));
            invocation.key(self.keys.delayed(job.queue));
            invocation.key(
                self.keys
                    .burst(job.queue, job.burst_key.as_deref().unwrap_or(&job.job_id)),
            );
        }
        invocation
            .arg(dedupe_keys.len())
            .arg(self.dedupe_ttl.as_secs().max(1));
        for job in jobs {
            let (window, cap) = match (&job.burst_key, self.burst) {
                (Some(_), Some(burst)) => (burst.window.as_millis(), burst.cap.as_millis()),
                _ => (0, 0),
            };
            let member = serde_json::to_string(&super::entry::DelayedMember {
                e: &job.job_id,
                id: &job.job_id,
                a: "0".into(),
                p: &job.payload,
                f: "0".into(),
                r: "0".into(),
            })
            .map_err(|source| QueueError::Codec {
                queue: job.queue.to_owned(),
                source,
            })?;
            invocation
                .arg(&job.job_id)
                .arg(&job.payload)
                .arg(window as u64)
                .arg(cap as u64)
                .arg(member);
        }
        let mut conn = self.conn.clone();
        let queued: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(if queued == 1 {
            EnqueueOutcome::Queued
        } else {
            EnqueueOutcome::Duplicate
        })
    }
}
