//! [`RedisStore`]: the one Redis handle every store type holds (a connection manager and the
//! key namespace), so `ApprovalStore`, the lifecycle, routing and waiting-list stores are not
//! the same struct written four times.

use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::Script;

use crate::queue::Keys;

/// A Redis connection (multiplexed, reconnecting) and the key names under one prefix.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Keys,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A handle on an existing connection.
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self { conn, keys }
    }

    /// A handle on the queue client's connection and key namespace.
    pub fn for_queue(queue: &crate::queue::QueueClient) -> Self {
        Self::new(queue.connection(), queue.keys().clone())
    }

    /// A connection to issue commands on (a cheap clone of the shared manager).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The key names.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }
}

/// Deletes a token lock only while it still holds the caller's token (KEYS: the lock; ARGV:
/// the token): a holder whose lock expired and was taken never releases its successor's.
/// Returns 1 when deleted.
pub static RELEASE_IF_HELD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});
