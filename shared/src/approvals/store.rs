//! [`ApprovalStore`]: the approval items in Redis (layout in the [module docs](super)).

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};

use super::item::{
    ApprovalItem, ApprovalStatus, Decision, DecisionRecord, DraftDoc, MAX_CUSTOMER_TEXT_CHARS,
};
use super::scripts::{CREATE_LUA, DECIDE_LUA, SUPERSEDE_LUA, SWEEP_ONE_LUA, TRANSITION_LUA};
use crate::domain::{now_ms, AccountId, ApprovalId, ConversationId, MessageId};
use crate::queue::Keys;
use crate::redis_store::RedisStore;

/// What storing a draft did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored as pending.
    Created,
    /// Stored, but born superseded: a newer message of the conversation already has a draft.
    CreatedSuperseded,
    /// An item with this id already exists (a retried job): nothing changed.
    Exists,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq)]
pub enum DecideOutcome {
    /// Applied; the item as it is now.
    Applied(Box<ApprovalItem>),
    /// The item is no longer pending.
    Conflict(ApprovalStatus),
    /// No such item.
    NotFound,
}

/// Errors of the approval store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// Redis failed.
    #[error("redis unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    /// A stored document is not valid JSON (a bug or a foreign write).
    #[error("approval {id} is corrupt: {source}")]
    Corrupt {
        /// The item.
        id: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Handle on the approval store.
#[derive(Clone)]
pub struct ApprovalStore {
    store: RedisStore,
    retention_secs: u64,
}

impl std::fmt::Debug for ApprovalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalStore")
            .field("prefix", &self.store.keys().prefix())
            .finish_non_exhaustive()
    }
}

impl ApprovalStore {
    /// A store on an existing connection.
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            store: RedisStore::new(conn, keys),
            retention_secs: crate::config::DEFAULT_RETENTION.as_secs(),
        }
    }

    /// A store on the queue client's Redis connection and key namespace.
    pub fn for_queue(queue: &crate::queue::QueueClient) -> Self {
        Self {
            store: RedisStore::for_queue(queue),
            retention_secs: queue.retention().as_secs().max(1),
        }
    }

    /// The id of the approval item for a customer message.
    pub fn approval_id(account_id: i64, conversation_id: i64, message_id: i64) -> String {
        ApprovalId::for_message(
            AccountId::new(account_id),
            ConversationId::new(conversation_id),
            MessageId::new(message_id),
        )
        .into_string()
    }

    fn item_key(&self, id: &str) -> String {
        self.store.keys().approval(id)
    }

    fn item_prefix(&self) -> String {
        self.store.keys().approval_prefix()
    }

    fn pending_key(&self) -> String {
        self.store.keys().approvals_pending()
    }

    fn all_key(&self) -> String {
        self.store.keys().approvals_all()
    }

    fn conversation_key(&self, account_id: i64, conversation_id: i64) -> String {
        self.store
            .keys()
            .conversation_draft(account_id, conversation_id)
    }

    /// Stores a new draft as pending (idempotent on its id) and supersedes the conversation's
    /// older pending draft.
    pub async fn create(&self, doc: &DraftDoc) -> Result<CreateOutcome, ApprovalError> {
        let mut capped;
        let doc = if doc.customer_message.chars().count() > MAX_CUSTOMER_TEXT_CHARS {
            capped = doc.clone();
            capped.cap_customer_text();
            &capped
        } else {
            doc
        };
        let json = serde_json::to_string(doc).map_err(|source| ApprovalError::Corrupt {
            id: doc.id.clone(),
            source,
        })?;
        let score = doc.priority.rank() * 10_000_000_000_000 + doc.created_at_ms.max(0) as u64;
        let mut conn = self.store.conn();
        let outcome: String = Script::new(CREATE_LUA)
            .key(self.item_key(&doc.id))
            .key(self.pending_key())
            .key(self.all_key())
            .key(self.conversation_key(doc.account_id, doc.conversation_id))
            .key(self.store.keys().approvals_decided())
            .arg(&doc.id)
            .arg(json)
            .arg(score)
            .arg(doc.created_at_ms)
            .arg(doc.message_id)
            .arg(now_ms())
            .arg(self.item_prefix())
            .arg(self.retention_secs)
            .arg(self.store.keys().approval_evidence_prefix())
            .invoke_async(&mut conn)
            .await?;
        Ok(match outcome.as_str() {
            "exists" => CreateOutcome::Exists,
            "superseded" => CreateOutcome::CreatedSuperseded,
            _ => CreateOutcome::Created,
        })
    }

    /// Marks the conversation's pending draft superseded if it answers a message older than
    /// `newer_message_id`. Returns true when one was superseded.
    pub async fn supersede_older(
        &self,
        account_id: i64,
        conversation_id: i64,
        newer_message_id: i64,
    ) -> Result<bool, ApprovalError> {
        let mut conn = self.store.conn();
        let n: i64 = Script::new(SUPERSEDE_LUA)
            .key(self.conversation_key(account_id, conversation_id))
            .key(self.pending_key())
            .key(self.store.keys().approvals_decided())
            .arg(newer_message_id)
            .arg(now_ms())
            .arg(self.item_prefix())
            .arg(self.retention_secs)
            .arg(self.store.keys().approval_evidence_prefix())
            .invoke_async(&mut conn)
            .await?;
        Ok(n == 1)
    }

    /// One item.
    pub async fn get(&self, id: &str) -> Result<Option<ApprovalItem>, ApprovalError> {
        let mut conn = self.store.conn();
        let fields: std::collections::HashMap<String, String> =
            conn.hgetall(self.item_key(id)).await?;
        Self::assemble(id, fields)
    }

    fn assemble(
        id: &str,
        mut fields: std::collections::HashMap<String, String>,
    ) -> Result<Option<ApprovalItem>, ApprovalError> {
        let Some(doc) = fields.remove("doc") else {
            return Ok(None);
        };
        let corrupt = |source| ApprovalError::Corrupt {
            id: id.to_owned(),
            source,
        };
        let doc: DraftDoc = serde_json::from_str(&doc).map_err(corrupt)?;
        let status = fields
            .get("status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(ApprovalStatus::Pending);
        let decision = match fields.get("decision") {
            Some(json) => Some(serde_json::from_str(json).map_err(corrupt)?),
            None => None,
        };
        let number = |name: &str| fields.get(name).and_then(|v| v.parse::<i64>().ok());
        Ok(Some(ApprovalItem {
            status,
            decision,
            note_id: number("note_id"),
            note_posted_at_ms: number("note_posted_at_ms"),
            reply_message_id: number("reply_message_id"),
            held_back_reason: fields.get("held_back_reason").cloned(),
            updated_at_ms: number("updated_at_ms").unwrap_or(doc.created_at_ms),
            doc,
        }))
    }

    /// Items with `status` (all when `None`): pending ones by priority then age, others newest
    /// first; `offset`/`limit` paginate.
    pub async fn list(
        &self,
        status: Option<ApprovalStatus>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ApprovalItem>, ApprovalError> {
        let mut conn = self.store.conn();
        let limit = limit.clamp(1, 500);
        if status == Some(ApprovalStatus::Pending) {
            // Saturating: an offset past the end (even near usize::MAX) is an empty page, never
            // a wrapped, negative index (which Redis reads as counted from the end).
            let start = isize::try_from(offset).unwrap_or(isize::MAX);
            let stop = start.saturating_add(limit as isize - 1);
            let ids: Vec<String> = conn.zrange(self.pending_key(), start, stop).await?;
            return self.fetch_many(&ids).await;
        }
        // Scan newest first in pages, filtering by status.
        let mut out = Vec::new();
        let mut skipped = 0usize;
        let mut start = 0isize;
        const PAGE: isize = 200;
        loop {
            let ids: Vec<String> = conn
                .zrevrange(self.all_key(), start, start + PAGE - 1)
                .await?;
            if ids.is_empty() {
                break;
            }
            for item in self.fetch_many(&ids).await? {
                if status.is_none_or(|s| s == item.status) {
                    if skipped < offset {
                        skipped += 1;
                    } else {
                        out.push(item);
                        if out.len() == limit {
                            return Ok(out);
                        }
                    }
                }
            }
            start += PAGE;
        }
        Ok(out)
    }

    async fn fetch_many(&self, ids: &[String]) -> Result<Vec<ApprovalItem>, ApprovalError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hgetall(self.item_key(id));
        }
        let mut conn = self.store.conn();
        let rows: Vec<std::collections::HashMap<String, String>> =
            pipe.query_async(&mut conn).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, fields) in ids.iter().zip(rows) {
            if let Some(item) = Self::assemble(id, fields)? {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// The id of the conversation's newest draft (pending or not), if it has one.
    pub async fn conversation_draft(
        &self,
        account_id: i64,
        conversation_id: i64,
    ) -> Result<Option<String>, ApprovalError> {
        let mut conn = self.store.conn();
        Ok(conn
            .get(self.conversation_key(account_id, conversation_id))
            .await?)
    }

    /// Number of pending items.
    pub async fn pending_count(&self) -> Result<u64, ApprovalError> {
        let mut conn = self.store.conn();
        Ok(conn.zcard(self.pending_key()).await?)
    }

    /// Applies an operator's decision if the item is still pending.
    pub async fn decide(
        &self,
        id: &str,
        decision: Decision,
    ) -> Result<DecideOutcome, ApprovalError> {
        let record = DecisionRecord {
            decision,
            decided_at_ms: now_ms(),
        };
        let status = record.decision.status();
        let owes_reply = match &record.decision {
            Decision::Approve { .. } | Decision::Edit { .. } => true,
            Decision::Reject { reply, .. } => reply.is_some(),
            Decision::Escalate { .. } => false,
        };
        let follow_up = owes_reply || matches!(record.decision, Decision::Escalate { .. });
        let json = serde_json::to_string(&record).map_err(|source| ApprovalError::Corrupt {
            id: id.to_owned(),
            source,
        })?;
        let mut conn = self.store.conn();
        let outcome: String = Script::new(DECIDE_LUA)
            .key(self.item_key(id))
            .key(self.pending_key())
            .key(self.store.keys().approvals_decided())
            .key(self.store.keys().approvals_awaiting())
            .key(self.store.keys().approval_evidence(id))
            .arg(id)
            .arg(status.as_str())
            .arg(json)
            .arg(now_ms())
            .arg(self.retention_secs)
            .arg(if owes_reply { "0" } else { "1" })
            .arg(if follow_up { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await?;
        self.outcome(id, &outcome).await
    }

    async fn outcome(&self, id: &str, outcome: &str) -> Result<DecideOutcome, ApprovalError> {
        if outcome == "missing" {
            return Ok(DecideOutcome::NotFound);
        }
        if let Some(current) = outcome.strip_prefix("conflict:") {
            return Ok(DecideOutcome::Conflict(
                current.parse().unwrap_or(ApprovalStatus::Pending),
            ));
        }
        match self.get(id).await? {
            Some(item) => Ok(DecideOutcome::Applied(Box::new(item))),
            None => Ok(DecideOutcome::NotFound),
        }
    }

    /// Moves an item from one of `expected` to `to`, setting one extra field (e.g. the reply
    /// message id or a hold-back reason).
    pub async fn transition(
        &self,
        id: &str,
        expected: &[ApprovalStatus],
        to: ApprovalStatus,
        field: Option<(&str, String)>,
    ) -> Result<DecideOutcome, ApprovalError> {
        let expected: Vec<&str> = expected.iter().map(|s| s.as_str()).collect();
        let (name, value) = field.unwrap_or(("", String::new()));
        let final_status = to.is_final();
        let mut conn = self.store.conn();
        let outcome: String = Script::new(TRANSITION_LUA)
            .key(self.item_key(id))
            .key(self.pending_key())
            .key(self.store.keys().approvals_decided())
            .key(self.store.keys().approvals_awaiting())
            .key(self.store.keys().approval_evidence(id))
            .arg(id)
            .arg(expected.join(","))
            .arg(to.as_str())
            .arg(now_ms())
            .arg(name)
            .arg(value)
            .arg(self.retention_secs)
            .arg(if final_status { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await?;
        self.outcome(id, &outcome).await
    }

    /// Records the private note's Chatwoot id (the item stays as it is otherwise).
    pub async fn set_note_id(&self, id: &str, note_id: i64) -> Result<(), ApprovalError> {
        let mut conn = self.store.conn();
        let _: () = conn
            .hset_multiple(
                self.item_key(id),
                &[("note_id", note_id), ("note_posted_at_ms", now_ms())],
            )
            .await?;
        Ok(())
    }

    /// Forgets at most `limit` approvals whose decision is older than `cutoff_ms` (the item,
    /// its evidence and outcome, its index entries, the conversation pointers naming it);
    /// returns how many. Their hashes carry the same retention as a TTL: this also clears
    /// what the TTL cannot (sorted-set members, pointers).
    pub async fn sweep_decided(
        &self,
        cutoff_ms: i64,
        limit: usize,
    ) -> Result<usize, ApprovalError> {
        let keys = self.store.keys();
        let mut conn = self.store.conn();
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(keys.approvals_decided())
            .arg("-inf")
            .arg(cutoff_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(limit.max(1))
            .query_async(&mut conn)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let script = Script::new(SWEEP_ONE_LUA);
        // A pipeline sends EVALSHA only: load the script first.
        let _: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(SWEEP_ONE_LUA)
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        for id in &ids {
            let (pointer, last) = match id.parse::<ApprovalId>().ok().and_then(|a| a.parts()) {
                Some((account, conversation, _)) => (
                    keys.conversation_draft(account, conversation),
                    keys.learning_last(account, conversation),
                ),
                None => (keys.scratch("none"), keys.scratch("none")),
            };
            let mut invocation = script.key(self.item_key(id));
            invocation
                .key(keys.approval_evidence(id))
                .key(keys.learning_outcome(id))
                .key(self.all_key())
                .key(keys.approvals_decided())
                .key(keys.approvals_awaiting())
                .key(pointer)
                .key(last)
                .arg(id);
            pipe.invoke_script(&invocation);
        }
        let removed: Vec<i64> = pipe.query_async(&mut conn).await?;
        Ok(removed.iter().filter(|n| **n == 1).count())
    }

    /// Decided approvals (at most `limit`) decided at or before `before_ms` whose follow-up job
    /// is not known to be queued.
    pub async fn awaiting_follow_up(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, ApprovalError> {
        let mut conn = self.store.conn();
        Ok(redis::cmd("ZRANGEBYSCORE")
            .arg(self.store.keys().approvals_awaiting())
            .arg("-inf")
            .arg(before_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(limit.max(1))
            .query_async(&mut conn)
            .await?)
    }

    /// Notes that approval `id`'s follow-up job is queued (or no longer owed).
    pub async fn follow_up_queued(&self, id: &str) -> Result<(), ApprovalError> {
        let mut conn = self.store.conn();
        let _: i64 = conn
            .zrem(self.store.keys().approvals_awaiting(), id)
            .await?;
        Ok(())
    }
}
