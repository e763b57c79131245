//! The approval store: every draft waits here for an operator (approve / edit / reject /
//! escalate), ordered by priority then age.
//!
//! Redis layout (under the queue prefix):
//! - `approval:{id}`: a hash with `doc` (the immutable draft, JSON), `status`, `decision`
//!   (JSON, once decided), `note_id`, `note_posted_at_ms`, `reply_message_id`, `updated_at_ms`.
//! - `approvals:pending`: sorted set of pending ids, score = priority rank × 10¹³ + created ms,
//!   so `ZRANGE` yields urgent first, then oldest first.
//! - `approvals:all`: sorted set of every id by creation time (listing by status, newest first).
//! - `conversation:{account}:{conversation}:draft`: the id of the conversation's newest draft
//!   (one draft in flight per conversation; an older one is superseded).
//!
//! Status changes are Lua scripts that check the current status first, so two operators
//! deciding at once get one success and one conflict.

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, ApprovalId, ConversationId, MessageId};
use crate::queue::Keys;

/// Re-exported from [`crate::domain`], where they live, for existing callers.
pub use crate::domain::{now_ms, Action, Priority};

/// A knowledge source a draft relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Document path or retriever id.
    pub source: String,
    /// Heading.
    pub title: String,
    /// Relevance 0..=1.
    pub relevance: f32,
}

/// The immutable part of an approval item: what the drafter produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftDoc {
    /// Approval id, derived from the message (`{account}-{conversation}-{message}`).
    pub id: String,
    /// Chatwoot account id.
    pub account_id: i64,
    /// Conversation display id.
    pub conversation_id: i64,
    /// The customer message answered.
    pub message_id: i64,
    /// The customer's text.
    pub customer_message: String,
    /// The proposed reply.
    pub draft: String,
    /// 0–100.
    pub confidence: u8,
    /// Recommended action.
    pub action: Action,
    /// Priority.
    pub priority: Priority,
    /// Sentiment hint (`positive`, `neutral`, `negative`, `angry`).
    pub sentiment: String,
    /// Sources cited.
    pub sources: Vec<SourceRef>,
    /// What was missing when drafting (`knowledge`, `llm`): empty when nothing was.
    pub degraded: Vec<String>,
    /// True when no draft could be made and the operator writes the reply.
    pub placeholder: bool,
    /// True when safety words were found.
    pub safety: bool,
    /// True when the contact or conversation is flagged VIP.
    pub vip: bool,
    /// Which drafter made it (`extractive`, `llm`, `placeholder`).
    pub drafter: String,
    /// Webhook delivery that started the chain.
    pub delivery_id: String,
    /// When the ingress received the webhook (Unix ms).
    pub received_at_ms: i64,
    /// When the draft was stored (Unix ms).
    pub created_at_ms: i64,
}

impl DraftDoc {
    /// The approval id, typed.
    pub fn approval_id(&self) -> ApprovalId {
        ApprovalId::trusted(self.id.clone())
    }

    /// The account, typed.
    pub fn account(&self) -> AccountId {
        AccountId::new(self.account_id)
    }

    /// The conversation, typed.
    pub fn conversation(&self) -> ConversationId {
        ConversationId::new(self.conversation_id)
    }

    /// The customer message answered, typed.
    pub fn message(&self) -> MessageId {
        MessageId::new(self.message_id)
    }
}

/// Where an approval item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for an operator.
    Pending,
    /// Approved as drafted; the reply is queued.
    Approved,
    /// Approved with edits; the edited reply is queued.
    Edited,
    /// Rejected (optionally with the operator's own reply queued).
    Rejected,
    /// Handed to a team.
    Escalated,
    /// A newer customer message made it obsolete; never sent.
    Superseded,
    /// The public reply was posted.
    Sent,
    /// The reply was held back at send time (conversation resolved, a human replied, or the
    /// customer wrote again).
    HeldBack,
}

impl ApprovalStatus {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Edited => "edited",
            Self::Rejected => "rejected",
            Self::Escalated => "escalated",
            Self::Superseded => "superseded",
            Self::Sent => "sent",
            Self::HeldBack => "held_back",
        }
    }
}

impl std::str::FromStr for ApprovalStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
            .map_err(|_| format!("unknown approval status {s:?}"))
    }
}

/// An operator's decision on a pending item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Send the draft as is.
    Approve {
        /// Who decided.
        operator: String,
    },
    /// Send an edited text.
    Edit {
        /// Who decided.
        operator: String,
        /// The text to send.
        content: String,
    },
    /// Do not send the draft; optionally send the operator's own reply.
    Reject {
        /// Who decided.
        operator: String,
        /// Why.
        reason: String,
        /// The operator's reply, if any.
        reply: Option<String>,
    },
    /// Hand the conversation to a team with a private note.
    Escalate {
        /// Who decided.
        operator: String,
        /// Team name.
        team: String,
        /// Note for the team.
        note: String,
    },
}

impl Decision {
    /// The status the item gets.
    pub fn status(&self) -> ApprovalStatus {
        match self {
            Self::Approve { .. } => ApprovalStatus::Approved,
            Self::Edit { .. } => ApprovalStatus::Edited,
            Self::Reject { .. } => ApprovalStatus::Rejected,
            Self::Escalate { .. } => ApprovalStatus::Escalated,
        }
    }

    /// Who decided.
    pub fn operator(&self) -> &str {
        match self {
            Self::Approve { operator }
            | Self::Edit { operator, .. }
            | Self::Reject { operator, .. }
            | Self::Escalate { operator, .. } => operator,
        }
    }

    /// The metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Approve { .. } => "approve",
            Self::Edit { .. } => "edit",
            Self::Reject { .. } => "reject",
            Self::Escalate { .. } => "escalate",
        }
    }
}

/// A decision with its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// When (Unix ms).
    pub decided_at_ms: i64,
}

/// An approval item as stored: the draft plus its mutable state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalItem {
    /// The draft.
    #[serde(flatten)]
    pub doc: DraftDoc,
    /// Current status.
    pub status: ApprovalStatus,
    /// The operator's decision, once made.
    pub decision: Option<DecisionRecord>,
    /// Chatwoot message id of the private note, once posted.
    pub note_id: Option<i64>,
    /// When the note was stored (Unix ms).
    pub note_posted_at_ms: Option<i64>,
    /// Chatwoot message id of the public reply, once posted.
    pub reply_message_id: Option<i64>,
    /// Why the reply was held back, if it was.
    pub held_back_reason: Option<String>,
    /// Last change (Unix ms).
    pub updated_at_ms: i64,
}

impl ApprovalItem {
    /// The text a decision says to send publicly, if any.
    pub fn reply_text(&self) -> Option<&str> {
        match &self.decision.as_ref()?.decision {
            Decision::Approve { .. } => Some(&self.doc.draft),
            Decision::Edit { content, .. } => Some(content),
            Decision::Reject { reply, .. } => reply.as_deref(),
            Decision::Escalate { .. } => None,
        }
    }
}

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

const CREATE_LUA: &str = r#"
-- KEYS: item, pending, all, conversation pointer
-- ARGV: id, doc, score, created_ms, message_id, now_ms, key prefix for items
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
local status = 'pending'
local current = redis.call('GET', KEYS[4])
if current and current ~= ARGV[1] then
  local current_key = ARGV[7] .. current
  local current_msg = tonumber(redis.call('HGET', current_key, 'message_id') or '0')
  if current_msg > tonumber(ARGV[5]) then
    status = 'superseded'
  elseif redis.call('HGET', current_key, 'status') == 'pending' then
    redis.call('HSET', current_key, 'status', 'superseded', 'updated_at_ms', ARGV[6])
    redis.call('ZREM', KEYS[2], current)
  end
end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'status', status, 'message_id', ARGV[5], 'updated_at_ms', ARGV[6])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if status == 'pending' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('SET', KEYS[4], ARGV[1])
end
return status
"#;

const DECIDE_LUA: &str = r#"
-- KEYS: item, pending; ARGV: id, new status, decision json, now_ms
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' then return 'conflict:' .. status end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decision', ARGV[3], 'updated_at_ms', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
return 'ok'
"#;

const SUPERSEDE_LUA: &str = r#"
-- KEYS: conversation pointer, pending; ARGV: newer message id, now_ms, item key prefix
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local key = ARGV[3] .. current
local msg = tonumber(redis.call('HGET', key, 'message_id') or '0')
if msg >= tonumber(ARGV[1]) then return 0 end
if redis.call('HGET', key, 'status') ~= 'pending' then return 0 end
redis.call('HSET', key, 'status', 'superseded', 'updated_at_ms', ARGV[2])
redis.call('ZREM', KEYS[2], current)
return 1
"#;

const TRANSITION_LUA: &str = r#"
-- KEYS: item, pending; ARGV: id, expected statuses (comma list), new status, now_ms, field, value
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local status = redis.call('HGET', KEYS[1], 'status')
local ok = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == status then ok = true end end
if not ok then return 'conflict:' .. status end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'updated_at_ms', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], ARGV[5], ARGV[6]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 'ok'
"#;

/// Handle on the approval store.
#[derive(Clone)]
pub struct ApprovalStore {
    conn: ConnectionManager,
    keys: Keys,
}

impl std::fmt::Debug for ApprovalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalStore")
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

impl ApprovalStore {
    /// A store on an existing connection.
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self { conn, keys }
    }

    /// A store on the queue client's Redis connection and key namespace.
    pub fn for_queue(queue: &crate::queue::QueueClient) -> Self {
        Self::new(queue.connection(), queue.keys().clone())
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
        self.keys.approval(id)
    }

    fn item_prefix(&self) -> String {
        self.keys.approval_prefix()
    }

    fn pending_key(&self) -> String {
        self.keys.approvals_pending()
    }

    fn all_key(&self) -> String {
        self.keys.approvals_all()
    }

    fn conversation_key(&self, account_id: i64, conversation_id: i64) -> String {
        self.keys.conversation_draft(account_id, conversation_id)
    }

    /// Stores a new draft as pending (idempotent on its id) and supersedes the conversation's
    /// older pending draft.
    pub async fn create(&self, doc: &DraftDoc) -> Result<CreateOutcome, ApprovalError> {
        let json = serde_json::to_string(doc).map_err(|source| ApprovalError::Corrupt {
            id: doc.id.clone(),
            source,
        })?;
        let score = doc.priority.rank() * 10_000_000_000_000 + doc.created_at_ms.max(0) as u64;
        let mut conn = self.conn.clone();
        let outcome: String = Script::new(CREATE_LUA)
            .key(self.item_key(&doc.id))
            .key(self.pending_key())
            .key(self.all_key())
            .key(self.conversation_key(doc.account_id, doc.conversation_id))
            .arg(&doc.id)
            .arg(json)
            .arg(score)
            .arg(doc.created_at_ms)
            .arg(doc.message_id)
            .arg(now_ms())
            .arg(self.item_prefix())
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
        let mut conn = self.conn.clone();
        let n: i64 = Script::new(SUPERSEDE_LUA)
            .key(self.conversation_key(account_id, conversation_id))
            .key(self.pending_key())
            .arg(newer_message_id)
            .arg(now_ms())
            .arg(self.item_prefix())
            .invoke_async(&mut conn)
            .await?;
        Ok(n == 1)
    }

    /// One item.
    pub async fn get(&self, id: &str) -> Result<Option<ApprovalItem>, ApprovalError> {
        let mut conn = self.conn.clone();
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
        let mut conn = self.conn.clone();
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
        let mut conn = self.conn.clone();
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
        let mut conn = self.conn.clone();
        Ok(conn
            .get(self.conversation_key(account_id, conversation_id))
            .await?)
    }

    /// Number of pending items.
    pub async fn pending_count(&self) -> Result<u64, ApprovalError> {
        let mut conn = self.conn.clone();
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
        let json = serde_json::to_string(&record).map_err(|source| ApprovalError::Corrupt {
            id: id.to_owned(),
            source,
        })?;
        let mut conn = self.conn.clone();
        let outcome: String = Script::new(DECIDE_LUA)
            .key(self.item_key(id))
            .key(self.pending_key())
            .arg(id)
            .arg(status.as_str())
            .arg(json)
            .arg(now_ms())
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
        let mut conn = self.conn.clone();
        let outcome: String = Script::new(TRANSITION_LUA)
            .key(self.item_key(id))
            .key(self.pending_key())
            .arg(id)
            .arg(expected.join(","))
            .arg(to.as_str())
            .arg(now_ms())
            .arg(name)
            .arg(value)
            .invoke_async(&mut conn)
            .await?;
        self.outcome(id, &outcome).await
    }

    /// Records the private note's Chatwoot id (the item stays as it is otherwise).
    pub async fn set_note_id(&self, id: &str, note_id: i64) -> Result<(), ApprovalError> {
        let mut conn = self.conn.clone();
        let _: () = conn
            .hset_multiple(
                self.item_key(id),
                &[("note_id", note_id), ("note_posted_at_ms", now_ms())],
            )
            .await?;
        Ok(())
    }
}
