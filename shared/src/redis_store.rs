//! [`RedisStore`]: the one Redis handle every store type holds (a connection manager and the
//! key namespace), so `ApprovalStore`, the lifecycle, routing and waiting-list stores are not
//! the same struct written four times.

use redis::aio::ConnectionManager;

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
