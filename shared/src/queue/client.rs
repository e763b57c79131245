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
}

impl NewJob {
    /// Encodes a typed job.
    pub fn encode<J: Job>(job: &J) -> Result<Self, QueueError> {
        let payload = serde_json::to_string(job).map_err(|source| QueueError::Codec {
            queue: J::QUEUE.to_owned(),
            source,
        })?;
        Ok(Self {
            queue: J::QUEUE,
            job_id: job.job_id(),
            payload,
        })
    }
}

/// A cheap-to-clone handle on the queues: one multiplexed, auto-reconnecting connection.
#[derive(Clone)]
pub struct QueueClient {
    conn: ConnectionManager,
    keys: Keys,
    dedupe_ttl: Duration,
    url: String,
    retention: Duration,
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
        let client = redis::Client::open(config.url.as_str())?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)?;
        Ok(Self {
            conn,
            keys: Keys::new(config.key_prefix.clone()),
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
            url: config.url.clone(),
            retention: config.retention,
        })
    }

    /// How long decided approvals, learning records and events are kept
    /// ([`RedisConfig::retention`]).
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The Redis URL (without change; may hold a password, never log it).
    pub fn url(&self) -> &str {
        &self.url
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
        for job in jobs {
            invocation.key(self.keys.stream(job.queue));
        }
        invocation
            .arg(dedupe_keys.len())
            .arg(self.dedupe_ttl.as_secs().max(1));
        for job in jobs {
            invocation.arg(&job.job_id).arg(&job.payload);
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
