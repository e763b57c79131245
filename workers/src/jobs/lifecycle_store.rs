//! Where `copydesk-lifecycle` keeps each conversation's [`ConversationState`]: JSON in Redis,
//! changed only by compare-and-set on a version number, plus an index of tracked
//! conversations scored by when the scheduled sweep next needs to look at them.
//!
//! Redis layout (under the queue prefix):
//! - `lifecycle:{account}:{conversation}`: hash with `state` (the JSON) and `version` (a
//!   counter bumped by every write);
//! - `lifecycle:due`: sorted set of `{account}:{conversation}` for every tracked, not closed
//!   conversation, score = the Unix ms at which a sweep could next change it (an SLA target
//!   running out, or the auto-close time); `+inf` when nothing is pending.
//!
//! Why compare-and-set: two lifecycle workers may handle two events of one conversation at
//! the same moment. Each reads state and version, applies its event in memory, and writes
//! back with one Lua call that succeeds only if the version is still the one it read; the
//! loser reads again and re-applies, so no update is lost. (`WATCH`/`MULTI` would need a
//! dedicated connection per update; the workers share one multiplexed connection.)
//!
//! Every first response, resolution and SLA breach a write produces is also appended to the
//! console's stats stream (`stats:lifecycle`, see [`copydesk::stats`]).
//!
//! A closed conversation leaves the index and its state expires after
//! [`CLOSED_STATE_TTL`] (the retention, when the store is built with
//! [`LifecycleStore::with_closed_ttl`]): Copydesk's tracking ends there (see [`crate::lifecycle`]).

use std::sync::LazyLock;
use std::time::Duration;

use copydesk::queue::Keys;
use copydesk::redis_store::RedisStore;
use rand::Rng;
use redis::aio::ConnectionManager;
use redis::Script;

use copydesk::stats::{self, LifecycleSample, SampleKind};

use crate::lifecycle::{ConversationState, LifecycleEffect, LifecyclePolicy, SlaKind, Status};

/// How long a closed conversation's state is kept (so a late event still finds it).
pub const CLOSED_STATE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Compare-and-set rounds before an update gives up (and the job is retried later).
pub const MAX_CAS_ROUNDS: u32 = 64;

/// Writes a state if its version is unchanged, and files it in the due index.
/// KEYS: state hash, due index. ARGV: expected version, state JSON, index member, due score
/// ('' = leave the index), TTL seconds (0 = keep forever).
/// Returns the new version, or -1 when another writer came first.
static COMPARE_AND_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = redis.call('HGET', KEYS[1], 'version')
if not current then current = '0' end
if current ~= ARGV[1] then return -1 end
local version = tonumber(current) + 1
redis.call('HSET', KEYS[1], 'version', version, 'state', ARGV[2])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[3])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
end
if tonumber(ARGV[5]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[5])
else
  redis.call('PERSIST', KEYS[1])
end
return version
"#,
    )
});

/// Re-scores an index entry if the state is still at the version it was computed from.
/// KEYS: state hash, due index. ARGV: version, member, score ('' = remove).
static RESCORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = redis.call('HGET', KEYS[1], 'version')
if not current then
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 0
end
if current ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[2])
else
  redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[2])
end
return 1
"#,
    )
});

/// A lifecycle store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis failed.
    #[error("lifecycle store: redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored state is not readable JSON.
    #[error("lifecycle store: state of conversation {account_id}:{conversation_id} is corrupt: {source}")]
    Corrupt {
        /// Account.
        account_id: i64,
        /// Conversation.
        conversation_id: i64,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// Other writers kept winning.
    #[error(
        "lifecycle store: conversation {account_id}:{conversation_id} kept changing under us \
         ({MAX_CAS_ROUNDS} compare-and-set rounds lost)"
    )]
    Contended {
        /// Account.
        account_id: i64,
        /// Conversation.
        conversation_id: i64,
    },
}

/// What one update did.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The state before the update.
    pub before: ConversationState,
    /// The state after it (equal to `before` when nothing changed).
    pub after: ConversationState,
    /// The effects of the step (empty for a replay).
    pub effects: Vec<LifecycleEffect>,
    /// The stored version after the update (unchanged when nothing was written).
    pub version: u64,
}

/// A tracked conversation as the index names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tracked {
    /// Account.
    pub account_id: i64,
    /// Conversation display id.
    pub conversation_id: i64,
}

impl Tracked {
    /// `{account}:{conversation}`.
    pub fn member(&self) -> String {
        format!("{}:{}", self.account_id, self.conversation_id)
    }

    /// Parses `{account}:{conversation}`.
    pub fn parse(member: &str) -> Option<Self> {
        let (account, conversation) = member.split_once(':')?;
        Some(Self {
            account_id: account.parse().ok()?,
            conversation_id: conversation.parse().ok()?,
        })
    }
}

/// When a sweep could next change this state (Unix ms), or `None` when only an event can:
/// the first response or resolution target of the running episode (unless already missed
/// and counted), and the auto-close time of a resolved conversation.
pub fn next_due_ms(state: &ConversationState, policy: &LifecyclePolicy) -> Option<i64> {
    if state.is_closed() {
        return None;
    }
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let mut due: Vec<i64> = Vec::new();
    let episode = &state.episode;
    if let Some(start) = episode.first_customer_message_at_ms {
        if episode.resolved_at_ms.is_none() {
            if episode.first_reply_at_ms.is_none() && !episode.first_response_breached {
                // The sweep counts a breach once the wait is strictly longer than the target.
                let target = ms(policy.sla.first_response(state.priority));
                due.push(start.saturating_add(target).saturating_add(1));
            }
            if !episode.resolution_breached {
                let target = ms(policy.sla.resolution(state.priority));
                due.push(start.saturating_add(target).saturating_add(1));
            }
        }
    }
    if state.status == Status::Resolved {
        if let Some(since) = state.resolved_since_ms {
            due.push(since.saturating_add(ms(policy.auto_close_after)));
        }
    }
    due.into_iter().min()
}

/// The conversation states.
#[derive(Clone)]
pub struct LifecycleStore {
    store: RedisStore,
    closed_ttl: Duration,
}

impl std::fmt::Debug for LifecycleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifecycleStore")
            .field("prefix", &self.store.keys().prefix())
            .finish_non_exhaustive()
    }
}

impl LifecycleStore {
    /// A store on an existing connection.
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            store: RedisStore::new(conn, keys),
            closed_ttl: CLOSED_STATE_TTL,
        }
    }

    /// The same store keeping closed conversations' state `ttl` (the retention,
    /// `COPYDESK_RETENTION_DAYS`) instead of [`CLOSED_STATE_TTL`].
    pub fn with_closed_ttl(mut self, ttl: Duration) -> Self {
        self.closed_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// The hash holding one conversation's state and version.
    pub fn state_key(&self, account_id: i64, conversation_id: i64) -> String {
        self.store.keys().lifecycle(account_id, conversation_id)
    }

    /// The index of tracked conversations, scored by next due time.
    pub fn due_key(&self) -> String {
        self.store.keys().lifecycle_due()
    }

    /// A conversation's state and version (version 0 and `None` when never stored).
    pub async fn load(
        &self,
        account_id: i64,
        conversation_id: i64,
    ) -> Result<(u64, Option<ConversationState>), StoreError> {
        let mut conn = self.store.conn();
        let (version, json): (Option<u64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.state_key(account_id, conversation_id))
            .arg("version")
            .arg("state")
            .query_async(&mut conn)
            .await?;
        let state = json
            .map(|j| {
                serde_json::from_str(&j).map_err(|source| StoreError::Corrupt {
                    account_id,
                    conversation_id,
                    source,
                })
            })
            .transpose()?;
        Ok((version.unwrap_or(0), state))
    }

    /// Applies `step` to the conversation's state (a fresh one when none is stored) and
    /// stores the result with compare-and-set, re-reading and re-applying when another
    /// writer came first. `step` must be a pure function of the state (it may run several
    /// times). Nothing is written when the state did not change (a replay, or a sweep that
    /// found nothing due), so a sweep never creates a state.
    pub async fn update<F>(
        &self,
        account_id: i64,
        conversation_id: i64,
        policy: &LifecyclePolicy,
        mut step: F,
    ) -> Result<Update, StoreError>
    where
        F: FnMut(&mut ConversationState) -> Vec<LifecycleEffect>,
    {
        let key = self.state_key(account_id, conversation_id);
        let member = Tracked {
            account_id,
            conversation_id,
        }
        .member();
        for round in 0..MAX_CAS_ROUNDS {
            let (version, stored) = self.load(account_id, conversation_id).await?;
            let before = stored.unwrap_or_default();
            let mut after = before.clone();
            let effects = step(&mut after);
            if effects.is_empty() && after == before {
                return Ok(Update {
                    before,
                    after,
                    effects,
                    version,
                });
            }
            let json = serde_json::to_string(&after).map_err(|source| StoreError::Corrupt {
                account_id,
                conversation_id,
                source,
            })?;
            let (score, ttl) = if after.is_closed() {
                (String::new(), self.closed_ttl.as_secs())
            } else {
                let score = next_due_ms(&after, policy)
                    .map_or_else(|| "+inf".to_owned(), |due| due.to_string());
                (score, 0)
            };
            let mut conn = self.store.conn();
            let written: i64 = COMPARE_AND_SET
                .key(&key)
                .key(self.due_key())
                .arg(version)
                .arg(json)
                .arg(&member)
                .arg(score)
                .arg(ttl)
                .invoke_async(&mut conn)
                .await?;
            if written >= 0 {
                self.record_samples(&effects).await;
                return Ok(Update {
                    before,
                    after,
                    effects,
                    version: written as u64,
                });
            }
            // Lost the race: back off a little (more each round) so writers spread out.
            let jitter = rand::rng().random_range(0..=(2 + u64::from(round) * 2));
            tokio::time::sleep(Duration::from_millis(jitter)).await;
        }
        Err(StoreError::Contended {
            account_id,
            conversation_id,
        })
    }

    /// Appends the effects' first response, resolution and SLA breach samples to the stats
    /// stream the console reads ([`copydesk::stats`]). Only a step that wrote its state gets
    /// here, so a replayed event adds nothing; best effort (a failure is logged, the state
    /// change stands).
    async fn record_samples(&self, effects: &[LifecycleEffect]) {
        let now = copydesk::approvals::now_ms();
        let samples: Vec<LifecycleSample> = effects
            .iter()
            .filter_map(|effect| {
                let (kind, priority, seconds) = match effect {
                    LifecycleEffect::FirstResponse { priority, seconds } => {
                        (SampleKind::FirstResponse, *priority, *seconds)
                    }
                    LifecycleEffect::Resolved { priority, seconds } => {
                        (SampleKind::Resolution, *priority, *seconds)
                    }
                    LifecycleEffect::SlaBreach { priority, kind } => (
                        match kind {
                            SlaKind::FirstResponse => SampleKind::FirstResponseBreach,
                            SlaKind::Resolution => SampleKind::ResolutionBreach,
                        },
                        *priority,
                        0.0,
                    ),
                    _ => return None,
                };
                Some(LifecycleSample {
                    kind,
                    priority,
                    seconds,
                    at_ms: now,
                })
            })
            .collect();
        if samples.is_empty() {
            return;
        }
        let mut conn = self.store.conn();
        if let Err(error) =
            stats::record_lifecycle(&mut conn, self.store.keys(), &samples, now).await
        {
            tracing::warn!(%error, "lifecycle stats samples not recorded");
        }
    }

    /// Up to `limit` tracked conversations due at `now_ms`, earliest first.
    pub async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Tracked>, StoreError> {
        let mut conn = self.store.conn();
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.due_key())
            .arg("-inf")
            .arg(now_ms)
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await?;
        let mut tracked = Vec::with_capacity(members.len());
        for member in members {
            match Tracked::parse(&member) {
                Some(t) => tracked.push(t),
                None => {
                    tracing::warn!(%member, "malformed lifecycle index entry; dropping it");
                    let _: i64 = redis::cmd("ZREM")
                        .arg(self.due_key())
                        .arg(&member)
                        .query_async(&mut conn)
                        .await?;
                }
            }
        }
        Ok(tracked)
    }

    /// Every tracked conversation (for a full pass: tests, ops, re-scoring).
    pub async fn tracked(&self) -> Result<Vec<Tracked>, StoreError> {
        let mut conn = self.store.conn();
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.due_key())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        Ok(members.iter().filter_map(|m| Tracked::parse(m)).collect())
    }

    /// Files a tracked conversation under the next due time of `state` (read at `version`),
    /// unless the state changed meanwhile; removes it when the state is gone or closed.
    pub async fn rescore(
        &self,
        tracked: Tracked,
        version: u64,
        state: &ConversationState,
        policy: &LifecyclePolicy,
    ) -> Result<(), StoreError> {
        let score = if state.is_closed() {
            String::new()
        } else {
            next_due_ms(state, policy).map_or_else(|| "+inf".to_owned(), |due| due.to_string())
        };
        let mut conn = self.store.conn();
        let _: i64 = RESCORE
            .key(self.state_key(tracked.account_id, tracked.conversation_id))
            .key(self.due_key())
            .arg(version)
            .arg(tracked.member())
            .arg(score)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Recomputes every index score with `policy` (after a restart with other SLA targets or
    /// another auto-close delay, stored scores may be stale). Entries whose state changed
    /// meanwhile are left to that change; entries whose state expired are removed. Returns
    /// how many were looked at.
    pub async fn rescore_all(&self, policy: &LifecyclePolicy) -> Result<usize, StoreError> {
        let all = self.tracked().await?;
        for t in &all {
            match self.load(t.account_id, t.conversation_id).await {
                Ok((version, state)) => {
                    let state = state.unwrap_or_default();
                    self.rescore(*t, version, &state, policy).await?;
                }
                Err(StoreError::Corrupt { .. }) => continue,
                Err(other) => return Err(other),
            }
        }
        Ok(all.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip() {
        let t = Tracked {
            account_id: 3,
            conversation_id: 1042,
        };
        assert_eq!(Tracked::parse(&t.member()), Some(t));
        assert_eq!(Tracked::parse("x:1"), None);
        assert_eq!(Tracked::parse("17"), None);
    }

    #[test]
    fn nothing_is_due_for_a_conversation_without_customer_messages() {
        let state = ConversationState::new();
        assert_eq!(next_due_ms(&state, &LifecyclePolicy::default()), None);
    }

    #[test]
    fn a_waiting_customer_is_due_at_the_first_response_target() {
        let mut state = ConversationState::new();
        state.episode.first_customer_message_at_ms = Some(1_000);
        let policy = LifecyclePolicy::default();
        let target = policy.sla.first_response(state.priority).as_millis() as i64;
        assert_eq!(next_due_ms(&state, &policy), Some(1_000 + target + 1));
        state.episode.first_response_breached = true;
        let resolution = policy.sla.resolution(state.priority).as_millis() as i64;
        assert_eq!(next_due_ms(&state, &policy), Some(1_000 + resolution + 1));
    }

    #[test]
    fn a_resolved_conversation_is_due_at_its_auto_close_time() {
        let mut state = ConversationState::new();
        state.status = Status::Resolved;
        state.resolved_since_ms = Some(5_000);
        let policy = LifecyclePolicy {
            auto_close_after: Duration::from_secs(10),
            ..LifecyclePolicy::default()
        };
        assert_eq!(next_due_ms(&state, &policy), Some(15_000));
        state.closed_at_ms = Some(15_000);
        assert_eq!(next_due_ms(&state, &policy), None);
    }
}
