//! Errors of the queue layer.

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// Redis could not be reached or answered with an error.
    #[error("redis unavailable: {0}")]
    RedisUnavailable(#[from] redis::RedisError),
    /// A job could not be encoded or decoded.
    #[error("job payload is not valid JSON for {queue}: {source}")]
    Codec {
        /// The queue.
        queue: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// A dead letter or job id does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The apalis worker stopped with an error.
    #[error("worker stopped: {0}")]
    Worker(String),
    /// Redis may evict keys (`maxmemory-policy` is not `noeviction`): see [`super::policy`].
    #[error(
        "Redis maxmemory-policy is {policy:?}, which can evict queued jobs and dedupe keys under \
         memory pressure: set `maxmemory-policy noeviction` (redis.conf or `CONFIG SET`; see \
         deploy/redis/redis.conf), or set COPYDESK_ALLOW_EVICTION=1 if your Redis provider does \
         not let you change it"
    )]
    EvictionPolicy {
        /// The policy Redis reported.
        policy: String,
    },
    /// The Redis settings cannot be used (a bad URL or `REDIS_CA_FILE`).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}
