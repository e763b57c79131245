//! Every Redis key name Copydesk writes, in one place so ops tools, tests and workers agree.
//! All live under one prefix (`copydesk` in production, unique per test):
//!
//! | key | type | holds | bound |
//! | --- | --- | --- | --- |
//! | `{queue}`, `{queue}:delayed` | stream, zset | a queue's jobs, its delayed retries | an entry is deleted when its job is settled (`XACK`+`XDEL`) |
//! | `{queue}:burst:{key}` | hash | the job of a burst waiting in the delayed set | its TTL (the burst cap) |
//! | `dedupe:{key}` | string | enqueue dedupe marker (job ids only, no text) | 24 h TTL |
//! | `dead`, `dead:items`, `dead:counts` | zset, hash, hash | dead letters | `COPYDESK_DEAD_LETTER_MAX`, bytes and age (parked `send_reply` kept) |
//! | `approval:{id}` | hash | approval items | pending and owed replies: kept; decided: TTL of the retention (`COPYDESK_RETENTION_DAYS`) |
//! | `approvals:pending`, `approvals:all` | zset, zset | item indexes | pending: until decided; all: the retention sweep removes forgotten ids |
//! | `approvals:decided`, `approvals:awaiting` | zset, zset | decided ids by decision time (the retention sweep), decisions whose follow-up job is not known to be queued (the follow-up sweep) | the retention sweep; until the follow-up is queued |
//! | `conversation:{a}:{c}:draft` | string | a conversation's newest draft id | deleted by the sweep with the item it names |
//! | `events` | stream | ops events | `MAXLEN ~ 10000` and the retention (`XTRIM MINID` in the sweep) |
//! | `learning` | stream | learning records | `MAXLEN ~ 100000` and the retention (`XTRIM MINID` in the sweep) |
//! | `learning:outcome:{id}`, `learning:last:{a}:{c}` | hash, string | learning outcomes | 90 d TTL, deleted by the sweep with their item |
//! | `lifecycle:{a}:{c}`, `lifecycle:due`, `lifecycle:policy` | hash, zset, string | lifecycle | open conversations: while tracked; closed: TTL of the retention, out of the index |
//! | `workload:{a}:owner`, `workload:{a}:agent:{agent}` | hash, set | open workload | released when a conversation is resolved or reassigned |
//! | `routing:{a}:round_robin` | string | round-robin cursors | one small value per account |
//! | `assign:{a}:waiting`, `…:entries`, `…:lock` | zset, hash, string | waiting list | until assigned; the lock has a TTL |
//! | `assign:{a}:escalation-note:{id}` | string | escalation note marker (older versions) | erased with its conversation |
//! | `post-lock:{idempotency key}` | string | lock of one post-once message | TTL of the lock |
//! | `approval-evidence:{id}` | string | what the drafter saw (context, passages) | 30 d TTL; the retention once its item is decided |
//! | `reconcile:watermark:{a}`, `reconcile:lock`, `reconcile:passes`, `reconcile:missed`, `…:items` | string, string, list, zset, hash | the reconciliation sweep (`copydesk::reconcile`) | one per account; TTL; 50 reports; 1000 newest missed messages |
//! | `stats:lifecycle` | stream | FRT/TTR samples and SLA breaches for the console's stats | `MAXLEN ~ 200000`, 8 days |
//! | `ui:session:{id}`, `ui:signin:{client}:{minute}` | string | console sessions, sign-in counters | `COPYDESK_SESSION_TTL_SECS`; 120 s |
//!
//! `copydesk::retention` has the sweep, the per-kind memory report and `erase_conversation`.

/// Consumer group every worker of a queue joins.
pub const GROUP: &str = "workers";

/// The key names under one prefix (`copydesk` in production; unique per test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The namespace.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stream holding a queue's unfinished jobs: `{prefix}:{queue}`.
    pub fn stream(&self, queue: &str) -> String {
        format!("{}:{queue}", self.prefix)
    }

    /// Sorted set of jobs waiting to be retried, scored by due time in ms.
    pub fn delayed(&self, queue: &str) -> String {
        format!("{}:{queue}:delayed", self.prefix)
    }

    /// The job of a burst (`Job::burst_key`) waiting in `queue`'s delayed set.
    pub fn burst(&self, queue: &str, key: &str) -> String {
        format!("{}:{queue}:burst:{key}", self.prefix)
    }

    /// Dedupe marker for one idempotency key.
    pub fn dedupe(&self, key: &str) -> String {
        format!("{}:dedupe:{key}", self.prefix)
    }

    /// Sorted set of dead-letter ids scored by last failure time (ms).
    pub fn dead_index(&self) -> String {
        format!("{}:dead", self.prefix)
    }

    /// Hash of dead-letter id → JSON record.
    pub fn dead_items(&self) -> String {
        format!("{}:dead:items", self.prefix)
    }

    /// Hash of queue → dead-letter count (for depth).
    pub fn dead_counts(&self) -> String {
        self.under("dead:counts")
    }

    /// Hash of one approval item.
    pub fn approval(&self, id: &str) -> String {
        format!("{}{id}", self.approval_prefix())
    }

    /// The prefix of every approval item's hash.
    pub fn approval_prefix(&self) -> String {
        self.under("approval:")
    }

    /// Sorted set of pending approval ids.
    pub fn approvals_pending(&self) -> String {
        self.under("approvals:pending")
    }

    /// Sorted set of every approval id.
    pub fn approvals_all(&self) -> String {
        self.under("approvals:all")
    }

    /// Sorted set of approval ids with nothing more owed, by decision time (ms): what the
    /// retention sweep forgets once older than the retention.
    pub fn approvals_decided(&self) -> String {
        self.under("approvals:decided")
    }

    /// Sorted set of decided approval ids whose follow-up job (`send_reply`, escalation) is
    /// not known to be queued yet, by decision time (ms): what the follow-up sweep re-queues.
    pub fn approvals_awaiting(&self) -> String {
        self.under("approvals:awaiting")
    }

    /// A conversation's pending draft id.
    pub fn conversation_draft(&self, account_id: i64, conversation_id: i64) -> String {
        self.under(&format!(
            "conversation:{account_id}:{conversation_id}:draft"
        ))
    }

    /// Stream of ops events.
    pub fn events(&self) -> String {
        self.under("events")
    }

    /// Stream of learning records.
    pub fn learning(&self) -> String {
        self.under("learning")
    }

    /// Hash of what happened after a decision.
    pub fn learning_outcome(&self, approval_id: &str) -> String {
        format!("{}{approval_id}", self.learning_outcome_prefix())
    }

    /// The prefix of every learning outcome hash.
    pub fn learning_outcome_prefix(&self) -> String {
        self.under("learning:outcome:")
    }

    /// A conversation's latest decided approval.
    pub fn learning_last(&self, account_id: i64, conversation_id: i64) -> String {
        self.under(&format!("learning:last:{account_id}:{conversation_id}"))
    }

    /// Hash of one conversation's lifecycle state and version.
    pub fn lifecycle(&self, account_id: i64, conversation_id: i64) -> String {
        self.under(&format!("lifecycle:{account_id}:{conversation_id}"))
    }

    /// Sorted set of tracked conversations by next due time.
    pub fn lifecycle_due(&self) -> String {
        self.under("lifecycle:due")
    }

    /// The lifecycle policy the due index was scored with.
    pub fn lifecycle_policy(&self) -> String {
        self.under("lifecycle:policy")
    }

    /// Hash of conversation → the agent holding it.
    pub fn workload_owner(&self, account_id: i64) -> String {
        self.under(&format!("workload:{account_id}:owner"))
    }

    /// The prefix of the per-agent sets of held conversations (`…{agent id}`).
    pub fn workload_agent_prefix(&self, account_id: i64) -> String {
        self.under(&format!("workload:{account_id}:agent:"))
    }

    /// An account's round-robin cursors (JSON).
    pub fn round_robin(&self, account_id: i64) -> String {
        self.under(&format!("routing:{account_id}:round_robin"))
    }

    /// Sorted set of an account's waiting conversations.
    pub fn waiting(&self, account_id: i64) -> String {
        self.under(&format!("assign:{account_id}:waiting"))
    }

    /// Hash of an account's waiting entries.
    pub fn waiting_entries(&self, account_id: i64) -> String {
        self.under(&format!("assign:{account_id}:waiting:entries"))
    }

    /// The lock of an account's waiting-list pass.
    pub fn waiting_lock(&self, account_id: i64) -> String {
        self.under(&format!("assign:{account_id}:waiting:lock"))
    }

    /// Marker (the note id) of an escalation's posted private note.
    pub fn escalation_note(&self, account_id: i64, approval_id: &str) -> String {
        self.under(&format!(
            "assign:{account_id}:escalation-note:{approval_id}"
        ))
    }

    /// The lock held while one message with this idempotency key is looked for and posted.
    pub fn post_lock(&self, idempotency_key: &str) -> String {
        self.under(&format!("post-lock:{idempotency_key}"))
    }

    /// An operator console session (`ui:session:{id}`, with the session's TTL).
    pub fn console_session(&self, id: &str) -> String {
        self.under(&format!("ui:session:{id}"))
    }

    /// The console's sign-in attempt counter of one client address in one minute.
    pub fn console_signin_attempts(&self, client: &str, minute: i64) -> String {
        self.under(&format!("ui:signin:{client}:{minute}"))
    }

    /// What the drafter saw for an approval item (`approval-evidence:{id}`, JSON with a TTL):
    /// see `copydesk::approval_facts`.
    pub fn approval_evidence(&self, id: &str) -> String {
        format!("{}{id}", self.approval_evidence_prefix())
    }

    /// The prefix of every approval's evidence key.
    pub fn approval_evidence_prefix(&self) -> String {
        self.under("approval-evidence:")
    }

    /// The stream of lifecycle samples (first response, resolution, SLA breaches) the
    /// console's stats page reads: see `copydesk::stats`.
    pub fn stats_lifecycle(&self) -> String {
        self.under("stats:lifecycle")
    }

    /// A key for tests and tools outside the product's own (e.g. a test's `processed` set).
    pub fn scratch(&self, suffix: &str) -> String {
        self.under(&format!("scratch:{suffix}"))
    }

    fn under(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }
}
