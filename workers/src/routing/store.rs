//! The routing state Copydesk keeps in Redis, behind one store type: open workload per agent
//! (which open conversations each agent holds, so the assigner can give a new conversation to
//! the online agent with the fewest) and the round-robin cursors (one JSON [`RoundRobin`] per
//! account at `routing:{account}:round_robin`, so replicas take turns together).
//!
//! Why our own count: Chatwoot's Application API has no per-agent open-conversation count
//! (the agents list carries only availability; counting would mean paging through every open
//! conversation of the account on each assignment). So Copydesk records what it sees:
//! the assigner adds a conversation when it assigns it (and moves it when it reassigns it),
//! and the lifecycle stage moves it when Chatwoot reports another assignee and removes it when
//! the conversation is resolved or closed. Conversations assigned by hand before Copydesk
//! first saw them are not counted until an event about them arrives.
//!
//! Redis layout (under the queue prefix, per Chatwoot account):
//! - `workload:{account}:owner`: hash conversation id → agent id (who holds it now);
//! - `workload:{account}:agent:{agent}`: set of the conversation ids the agent holds.
//!
//! Every change is one Lua call that reads the current owner and moves the id between the two
//! sets, so a conversation is counted for at most one agent and a replayed change is a no-op.

use std::collections::HashMap;
use std::sync::LazyLock;

use copydesk::queue::Keys;
use copydesk::redis_store::RedisStore;

use super::RoundRobin;
use redis::aio::ConnectionManager;
use redis::Script;

/// Moves one conversation to a new owner (or to nobody).
/// KEYS: owner hash. ARGV: conversation id, new agent id ('' = nobody), agent set prefix.
/// Returns the previous owner ('' = nobody).
static SET_OWNER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then old = '' end
if old == ARGV[2] then return old end
if old ~= '' then redis.call('SREM', ARGV[3] .. old, ARGV[1]) end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('SADD', ARGV[3] .. ARGV[2], ARGV[1])
end
return old
"#,
    )
});

/// Handle on the workload records and round-robin cursors.
#[derive(Clone)]
pub struct RoutingStore {
    store: RedisStore,
}

impl std::fmt::Debug for RoutingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingStore")
            .field("prefix", &self.store.keys().prefix())
            .finish_non_exhaustive()
    }
}

impl RoutingStore {
    /// The store on an existing connection.
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            store: RedisStore::new(conn, keys),
        }
    }

    fn owner_key(&self, account_id: i64) -> String {
        self.store.keys().workload_owner(account_id)
    }

    fn agent_prefix(&self, account_id: i64) -> String {
        self.store.keys().workload_agent_prefix(account_id)
    }

    /// The set of conversations `agent_id` holds (for ops tools and tests).
    pub fn agent_key(&self, account_id: i64, agent_id: i64) -> String {
        format!("{}{agent_id}", self.agent_prefix(account_id))
    }

    /// Records that `agent` now holds the conversation (`None`: nobody does) and returns who
    /// held it before. Idempotent.
    pub async fn set_owner(
        &self,
        account_id: i64,
        conversation_id: i64,
        agent: Option<i64>,
    ) -> Result<Option<i64>, redis::RedisError> {
        let mut conn = self.store.conn();
        let old: String = SET_OWNER
            .key(self.owner_key(account_id))
            .arg(conversation_id)
            .arg(agent.map(|a| a.to_string()).unwrap_or_default())
            .arg(self.agent_prefix(account_id))
            .invoke_async(&mut conn)
            .await?;
        Ok(old.parse().ok())
    }

    /// Forgets the conversation (resolved or closed): its agent holds one fewer.
    pub async fn release(
        &self,
        account_id: i64,
        conversation_id: i64,
    ) -> Result<Option<i64>, redis::RedisError> {
        self.set_owner(account_id, conversation_id, None).await
    }

    /// Who holds the conversation, as far as Copydesk knows.
    pub async fn owner(
        &self,
        account_id: i64,
        conversation_id: i64,
    ) -> Result<Option<i64>, redis::RedisError> {
        let mut conn = self.store.conn();
        let owner: Option<i64> = redis::cmd("HGET")
            .arg(self.owner_key(account_id))
            .arg(conversation_id)
            .query_async(&mut conn)
            .await?;
        Ok(owner)
    }

    /// Open conversations per agent, for each of `agents` (0 for an agent holding none).
    pub async fn open_counts(
        &self,
        account_id: i64,
        agents: &[i64],
    ) -> Result<HashMap<i64, u32>, redis::RedisError> {
        if agents.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for agent in agents {
            pipe.scard(self.agent_key(account_id, *agent));
        }
        let mut conn = self.store.conn();
        let counts: Vec<u32> = pipe.query_async(&mut conn).await?;
        Ok(agents.iter().copied().zip(counts).collect())
    }

    /// The Redis key of an account's round-robin cursors (JSON [`RoundRobin`]).
    pub fn round_robin_key(&self, account_id: i64) -> String {
        self.store.keys().round_robin(account_id)
    }

    /// The account's round-robin cursors (fresh ones when none are stored, or unreadable).
    pub async fn round_robin(&self, account_id: i64) -> Result<RoundRobin, redis::RedisError> {
        let mut conn = self.store.conn();
        let json: Option<String> = redis::cmd("GET")
            .arg(self.round_robin_key(account_id))
            .query_async(&mut conn)
            .await?;
        Ok(match json {
            Some(json) => serde_json::from_str(&json).unwrap_or_else(|error| {
                tracing::warn!(%error, "unreadable round-robin cursors; starting over");
                RoundRobin::new()
            }),
            None => RoundRobin::new(),
        })
    }

    /// Stores the account's round-robin cursors.
    pub async fn save_round_robin(
        &self,
        account_id: i64,
        round_robin: &RoundRobin,
    ) -> Result<(), redis::RedisError> {
        let json = serde_json::to_string(round_robin).unwrap_or_else(|_| "{}".to_owned());
        let mut conn = self.store.conn();
        redis::cmd("SET")
            .arg(self.round_robin_key(account_id))
            .arg(json)
            .query_async(&mut conn)
            .await
    }
}
