//! The assigner's waiting list: conversations routed while nobody in their team could take
//! them. They are assigned to the team at once (so they show in the team's Chatwoot view)
//! and wait here, ordered by priority then age, until a pass of the assigner finds an agent
//! online (`run_background` every `COPYDESK_WAITING_POLL_MS`, or an `AgentOnline` job).
//!
//! Redis layout (under the queue prefix, per Chatwoot account):
//! - `assign:{account}:waiting`: sorted set of conversation ids, score = priority rank ×
//!   10¹³ + waiting-since ms, so `ZRANGE` yields urgent first, then oldest first (as the
//!   approval queue does);
//! - `assign:{account}:waiting:entries`: hash conversation id → [`WaitingEntry`] JSON (what
//!   to route it with again);
//! - `assign:{account}:waiting:lock`: a short lock so one replica at a time runs a pass.

use std::sync::LazyLock;
use std::time::Duration;

use copydesk::domain::Priority;
use copydesk::queue::Keys;
use copydesk::redis_store::RedisStore;
use redis::aio::ConnectionManager;
use redis::Script;
use serde::{Deserialize, Serialize};

use super::{RoutingInput, TeamRef};

/// Score step between priorities: larger than any Unix time in ms.
const PRIORITY_STEP: i64 = 10_000_000_000_000;

/// Deletes the pass lock only if this replica still holds it.
/// KEYS: lock. ARGV: token.
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

/// A waiting conversation: what to route it with when someone comes online.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingEntry {
    /// The routing input of the decision that made it wait (escalation team included).
    pub input: RoutingInput,
    /// The team it was assigned to.
    pub team: TeamRef,
    /// The priority it was given.
    pub priority: Priority,
    /// Since when it waits (Unix ms); kept when the entry is refreshed.
    pub since_ms: i64,
}

impl WaitingEntry {
    /// The sorted-set score: priority rank, then age.
    pub fn score(&self) -> i64 {
        let rank = match self.priority {
            Priority::Urgent => 0,
            Priority::High => 1,
            Priority::Normal => 2,
            Priority::Low => 3,
        };
        rank * PRIORITY_STEP + self.since_ms.clamp(0, PRIORITY_STEP - 1)
    }
}

/// A waiting-list failure.
#[derive(Debug, thiserror::Error)]
pub enum WaitingListError {
    /// Redis failed.
    #[error("waiting list: redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// An entry could not be (de)serialised.
    #[error("waiting list: entry of conversation {conversation_id}: {source}")]
    Corrupt {
        /// The conversation.
        conversation_id: i64,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// Handle on the waiting lists.
#[derive(Clone)]
pub struct WaitingList {
    store: RedisStore,
}

impl std::fmt::Debug for WaitingList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitingList")
            .field("prefix", &self.store.keys().prefix())
            .finish_non_exhaustive()
    }
}

impl WaitingList {
    /// Waiting lists on an existing connection.
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            store: RedisStore::new(conn, keys),
        }
    }

    /// The sorted set of an account's waiting conversations.
    pub fn order_key(&self, account_id: i64) -> String {
        self.store.keys().waiting(account_id)
    }

    fn entries_key(&self, account_id: i64) -> String {
        self.store.keys().waiting_entries(account_id)
    }

    fn lock_key(&self, account_id: i64) -> String {
        self.store.keys().waiting_lock(account_id)
    }

    /// Puts (or refreshes) a conversation on the list; a conversation already waiting keeps
    /// its original waiting-since time, so refreshing never sends it to the back.
    pub async fn put(
        &self,
        account_id: i64,
        conversation_id: i64,
        mut entry: WaitingEntry,
    ) -> Result<(), WaitingListError> {
        if let Some(existing) = self.get(account_id, conversation_id).await? {
            entry.since_ms = entry.since_ms.min(existing.since_ms);
        }
        let json = serde_json::to_string(&entry).map_err(|source| WaitingListError::Corrupt {
            conversation_id,
            source,
        })?;
        let mut conn = self.store.conn();
        let () = redis::pipe()
            .atomic()
            .hset(self.entries_key(account_id), conversation_id, json)
            .ignore()
            .zadd(self.order_key(account_id), conversation_id, entry.score())
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// One conversation's entry, if it waits.
    pub async fn get(
        &self,
        account_id: i64,
        conversation_id: i64,
    ) -> Result<Option<WaitingEntry>, WaitingListError> {
        let mut conn = self.store.conn();
        let json: Option<String> = redis::cmd("HGET")
            .arg(self.entries_key(account_id))
            .arg(conversation_id)
            .query_async(&mut conn)
            .await?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|source| WaitingListError::Corrupt {
                conversation_id,
                source,
            })
        })
        .transpose()
    }

    /// Takes a conversation off the list (assigned, resolved or closed). Idempotent.
    pub async fn remove(
        &self,
        account_id: i64,
        conversation_id: i64,
    ) -> Result<(), WaitingListError> {
        let mut conn = self.store.conn();
        let () = redis::pipe()
            .atomic()
            .zrem(self.order_key(account_id), conversation_id)
            .ignore()
            .hdel(self.entries_key(account_id), conversation_id)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// How many conversations wait.
    pub async fn len(&self, account_id: i64) -> Result<u64, WaitingListError> {
        let mut conn = self.store.conn();
        let n: u64 = redis::cmd("ZCARD")
            .arg(self.order_key(account_id))
            .query_async(&mut conn)
            .await?;
        Ok(n)
    }

    /// The first `limit` waiting conversations, most urgent first, then oldest first. An
    /// entry whose JSON is missing or unreadable is dropped from the list (logged).
    pub async fn first(
        &self,
        account_id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, WaitingEntry)>, WaitingListError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.store.conn();
        let ids: Vec<i64> = redis::cmd("ZRANGE")
            .arg(self.order_key(account_id))
            .arg(0)
            .arg(limit as i64 - 1)
            .query_async(&mut conn)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let jsons: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.entries_key(account_id))
            .arg(&ids)
            .query_async(&mut conn)
            .await?;
        let mut entries = Vec::with_capacity(ids.len());
        for (id, json) in ids.into_iter().zip(jsons) {
            match json.map(|j| serde_json::from_str::<WaitingEntry>(&j)) {
                Some(Ok(entry)) => entries.push((id, entry)),
                Some(Err(error)) => {
                    tracing::error!(conversation = id, %error,
                        "unreadable waiting-list entry; dropping it");
                    self.remove(account_id, id).await?;
                }
                None => {
                    tracing::warn!(
                        conversation = id,
                        "waiting-list entry without data; dropping it"
                    );
                    self.remove(account_id, id).await?;
                }
            }
        }
        Ok(entries)
    }

    /// Takes the pass lock for `ttl` unless another replica holds it; `Some(token)` to
    /// release it with.
    pub async fn try_lock(
        &self,
        account_id: i64,
        ttl: Duration,
    ) -> Result<Option<String>, WaitingListError> {
        let token = ulid::Ulid::new().to_string();
        let mut conn = self.store.conn();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.lock_key(account_id))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await?;
        Ok(set.map(|_| token))
    }

    /// Releases the pass lock taken with `token` (no-op when it expired meanwhile).
    pub async fn unlock(&self, account_id: i64, token: &str) -> Result<(), WaitingListError> {
        let mut conn = self.store.conn();
        let _: i64 = UNLOCK
            .key(self.lock_key(account_id))
            .arg(token)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(priority: Priority, since_ms: i64) -> WaitingEntry {
        WaitingEntry {
            input: RoutingInput::default(),
            team: TeamRef {
                id: 1,
                name: "General".into(),
            },
            priority,
            since_ms,
        }
    }

    #[test]
    fn urgent_sorts_before_older_normal_and_age_breaks_ties() {
        let now = 1_750_000_000_000;
        assert!(
            entry(Priority::Urgent, now).score() < entry(Priority::Normal, now - 3_600_000).score()
        );
        assert!(entry(Priority::Normal, now - 1).score() < entry(Priority::Normal, now).score());
        assert!(entry(Priority::Normal, now).score() < entry(Priority::Low, 0).score());
    }
}
