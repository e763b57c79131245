//! What the reconciliation sweep keeps in Redis (the sweep itself is `copydesk-reconciler`,
//! in the workers crate): per-account watermarks, the one-pass-at-a-time lock, the last
//! passes' reports and the customer messages found too late to draft ("missed").
//!
//! | key | type | holds | bound |
//! | --- | --- | --- | --- |
//! | `reconcile:watermark:{a}` | string | Unix ms up to which account `a` is reconciled | one per account |
//! | `reconcile:lock` | string | the running pass's token | TTL, renewed while the pass runs |
//! | `reconcile:passes` | list | the latest pass reports (JSON) | [`MAX_PASS_REPORTS`] |
//! | `reconcile:missed`, `reconcile:missed:items` | zset, hash | missed customer messages by creation time | [`MAX_MISSED`] newest; `copydesk erase` removes a conversation's |

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use crate::queue::QueueClient;
use crate::redis_store::RedisStore;

/// Pass reports kept.
pub const MAX_PASS_REPORTS: isize = 50;
/// Missed messages kept (the newest by creation time).
pub const MAX_MISSED: usize = 1000;
/// Characters of a missed message's text kept for the listing.
pub const MISSED_EXCERPT_CHARS: usize = 160;

/// A customer message the sweep found that no webhook delivered, too old to draft (older
/// than the look-back window): listed for operators, never drafted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissedMessage {
    /// Chatwoot account.
    pub account_id: i64,
    /// Conversation display id.
    pub conversation_id: i64,
    /// Message id.
    pub message_id: i64,
    /// When the customer wrote it (Unix seconds).
    pub created_at: i64,
    /// The start of its text.
    pub excerpt: String,
    /// Whether an agent replied after it (in Chatwoot, without Copydesk).
    pub answered: bool,
    /// When the sweep found it (Unix ms).
    pub found_at_ms: i64,
}

impl MissedMessage {
    /// The first [`MISSED_EXCERPT_CHARS`] characters of `text`.
    pub fn excerpt_of(text: &str) -> String {
        let mut excerpt: String = text.chars().take(MISSED_EXCERPT_CHARS).collect();
        if text.chars().count() > MISSED_EXCERPT_CHARS {
            excerpt.push('…');
        }
        excerpt
    }

    fn field(&self) -> String {
        format!(
            "{}:{}:{}",
            self.account_id, self.conversation_id, self.message_id
        )
    }
}

/// Events a pass fed into the pipeline, by kind (the `kind` label of
/// `copydesk_reconcile_recovered_total`).
pub type Recovered = BTreeMap<String, u64>;

/// What one pass did in one account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountPass {
    /// Chatwoot account.
    pub account_id: i64,
    /// Start of the scanned time (Unix ms).
    pub since_ms: i64,
    /// Conversations with activity since then that were read.
    pub conversations_scanned: u64,
    /// Chatwoot API calls made.
    pub api_calls: u64,
    /// Events enqueued (or, in a dry run, that would be), by kind.
    pub recovered: Recovered,
    /// Events found that Copydesk had already seen (their webhook arrived).
    pub already_seen: u64,
    /// Customer messages older than the window, listed and not drafted.
    pub missed: u64,
    /// True when every page was read; only then does the watermark advance.
    pub complete: bool,
    /// Why the pass stopped early, if it did.
    pub error: Option<String>,
}

/// One pass over every enabled account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PassReport {
    /// When it started (Unix ms).
    pub started_at_ms: i64,
    /// When it ended (Unix ms).
    pub finished_at_ms: i64,
    /// True for `copydesk reconcile --dry-run`: nothing was enqueued or recorded.
    pub dry_run: bool,
    /// Per account.
    pub accounts: Vec<AccountPass>,
}

impl PassReport {
    /// Events recovered in every account, by kind.
    pub fn recovered(&self) -> Recovered {
        let mut total = Recovered::new();
        for account in &self.accounts {
            for (kind, n) in &account.recovered {
                *total.entry(kind.clone()).or_default() += n;
            }
        }
        total
    }
}

/// Records missed messages and keeps the newest [`MAX_MISSED`] by creation time.
/// KEYS: zset, hash. ARGV: max, then (score, field, json) triples.
static RECORD_MISSED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 2, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[2], ARGV[i + 1], ARGV[i + 2])
end
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
  redis.call('HDEL', KEYS[2], unpack(old))
end
return 0
"#,
    )
});

/// Moves a watermark forward only. KEYS: watermark. ARGV: ms.
static ADVANCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"#,
    )
});

/// KEYS: lock. ARGV: token, ttl ms. 1 when the caller holds the lock (renewed), else 0.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#,
    )
});

/// The sweep's Redis state.
#[derive(Debug, Clone)]
pub struct ReconcileStore {
    store: RedisStore,
}

impl ReconcileStore {
    /// The store on the queue client's connection and prefix.
    pub fn for_queue(queue: &QueueClient) -> Self {
        Self {
            store: RedisStore::for_queue(queue),
        }
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:reconcile:{rest}", self.store.keys().prefix())
    }

    /// Account `account`'s watermark (Unix ms), if a pass ever completed there.
    pub async fn watermark(&self, account: i64) -> redis::RedisResult<Option<i64>> {
        self.store
            .conn()
            .get(self.key(&format!("watermark:{account}")))
            .await
    }

    /// Moves account `account`'s watermark to `ms`, never backwards.
    pub async fn advance_watermark(&self, account: i64, ms: i64) -> redis::RedisResult<()> {
        ADVANCE
            .key(self.key(&format!("watermark:{account}")))
            .arg(ms)
            .invoke_async(&mut self.store.conn())
            .await
    }

    /// Takes the pass lock for `ttl` with `token`; false when another pass holds it.
    pub async fn try_lock(&self, token: &str, ttl: Duration) -> redis::RedisResult<bool> {
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key("lock"))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut self.store.conn())
            .await?;
        Ok(set.is_some())
    }

    /// Extends the lock while `token` holds it; false when it was lost.
    pub async fn renew_lock(&self, token: &str, ttl: Duration) -> redis::RedisResult<bool> {
        let held: i64 = RENEW
            .key(self.key("lock"))
            .arg(token)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut self.store.conn())
            .await?;
        Ok(held == 1)
    }

    /// Releases the lock if `token` still holds it.
    pub async fn release_lock(&self, token: &str) -> redis::RedisResult<()> {
        let _: i64 = crate::redis_store::RELEASE_IF_HELD
            .key(self.key("lock"))
            .arg(token)
            .invoke_async(&mut self.store.conn())
            .await?;
        Ok(())
    }

    /// Which of these enqueue dedupe keys exist (a dry run asks without writing).
    pub async fn seen(&self, dedupe_keys: &[String]) -> redis::RedisResult<bool> {
        let keys: Vec<String> = dedupe_keys
            .iter()
            .map(|k| self.store.keys().dedupe(k))
            .collect();
        let found: i64 = self.store.conn().exists(keys).await?;
        Ok(found > 0)
    }

    /// Lists `missed` (idempotent per message), keeping the newest [`MAX_MISSED`].
    pub async fn record_missed(&self, missed: &[MissedMessage]) -> redis::RedisResult<()> {
        if missed.is_empty() {
            return Ok(());
        }
        let mut invocation = RECORD_MISSED.key(self.key("missed"));
        invocation.key(self.key("missed:items")).arg(MAX_MISSED);
        for message in missed {
            let json = serde_json::to_string(message).unwrap_or_default();
            invocation
                .arg(message.created_at)
                .arg(message.field())
                .arg(json);
        }
        invocation.invoke_async(&mut self.store.conn()).await
    }

    /// Whether this message is listed as missed already.
    pub async fn is_missed(
        &self,
        account: i64,
        conversation: i64,
        message: i64,
    ) -> redis::RedisResult<bool> {
        self.store
            .conn()
            .hexists(
                self.key("missed:items"),
                format!("{account}:{conversation}:{message}"),
            )
            .await
    }

    /// The newest `limit` missed messages, newest first.
    pub async fn missed(&self, limit: usize) -> redis::RedisResult<Vec<MissedMessage>> {
        let mut conn = self.store.conn();
        let fields: Vec<String> = conn
            .zrevrange(self.key("missed"), 0, limit.max(1) as isize - 1)
            .await?;
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.key("missed:items"))
            .arg(&fields)
            .query_async(&mut conn)
            .await?;
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect())
    }

    /// Appends a pass report, keeping the latest [`MAX_PASS_REPORTS`].
    pub async fn record_pass(&self, report: &PassReport) -> redis::RedisResult<()> {
        let json = serde_json::to_string(report).unwrap_or_default();
        let key = self.key("passes");
        redis::pipe()
            .lpush(&key, json)
            .ignore()
            .ltrim(&key, 0, MAX_PASS_REPORTS - 1)
            .ignore()
            .query_async(&mut self.store.conn())
            .await
    }

    /// The latest `limit` pass reports, newest first.
    pub async fn passes(&self, limit: usize) -> redis::RedisResult<Vec<PassReport>> {
        let values: Vec<String> = self
            .store
            .conn()
            .lrange(self.key("passes"), 0, limit.max(1) as isize - 1)
            .await?;
        Ok(values
            .into_iter()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(MissedMessage::excerpt_of("short"), "short");
        let long = "é".repeat(500);
        let excerpt = MissedMessage::excerpt_of(&long);
        assert_eq!(excerpt.chars().count(), MISSED_EXCERPT_CHARS + 1);
        assert!(excerpt.ends_with('…'));
    }

    #[test]
    fn recovered_events_add_up_across_accounts() {
        let account = |id, n| AccountPass {
            account_id: id,
            recovered: [("message".to_owned(), n)].into(),
            ..AccountPass::default()
        };
        let report = PassReport {
            accounts: vec![account(1, 2), account(2, 3)],
            ..PassReport::default()
        };
        assert_eq!(report.recovered()["message"], 5);
    }
}
