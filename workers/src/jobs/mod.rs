//! The job handlers: one module per queue, each a small struct holding what its stage needs
//! and one `handle(job, attempt)` that the shared runner ([`copydesk::queue::run_worker`])
//! calls once per attempt. A handler returns `Ok` only after its side effect is stored, so a
//! crash before that replays the job; every side effect is idempotent on the job's cause.
//!
//! - [`lookup_knowledge`]: passages for the customer message (degraded when retries are spent).
//! - [`generate_draft`]: the draft, the approval item, then `post_note` + `assign_conversation`.
//! - [`post_note`]: the draft as a private note for agents.
//! - [`send_reply`]: the approved text as a public reply, exactly once.
//! - [`assign_conversation`]: routing decision → Chatwoot assignment and priority.
//! - [`track_conversation`]: lifecycle state, FRT/TTR/SLA metrics, auto-close.

pub mod assign_conversation;
pub mod context;
pub mod generate_draft;
pub mod kind;
pub mod lifecycle_store;
pub mod lookup_knowledge;
pub mod post_note;
pub mod post_once;
pub mod send_reply;
pub mod track_conversation;

use std::sync::Arc;

use copydesk::approvals::{ApprovalError, ApprovalItem, ApprovalStore};
use copydesk::chatwoot::{ChatwootAccounts, ChatwootClient, ChatwootError};
use copydesk::queue::{JobError, QueueClient, QueueError};

/// What every stage shares: the queue, the approval store and (when configured) Chatwoot.
#[derive(Clone, Debug)]
pub struct Deps {
    /// Queue access (enqueue follow-up jobs, keys, connection).
    pub queue: QueueClient,
    /// Approval items.
    pub approvals: ApprovalStore,
    /// The Chatwoot API of every configured account, when `CHATWOOT_*` is configured.
    pub chatwoot: Option<Arc<ChatwootAccounts>>,
}

impl Deps {
    /// Dependencies on `queue`, with Chatwoot (one account) if given.
    pub fn new(queue: QueueClient, chatwoot: Option<ChatwootClient>) -> Self {
        Self::with_accounts(queue, chatwoot.map(ChatwootAccounts::single))
    }

    /// Dependencies on `queue`, with the Chatwoot clients of several accounts if given.
    pub fn with_accounts(queue: QueueClient, chatwoot: Option<ChatwootAccounts>) -> Self {
        let approvals = ApprovalStore::for_queue(&queue);
        Self {
            queue,
            approvals,
            chatwoot: chatwoot.map(Arc::new),
        }
    }

    /// The Chatwoot client of `account_id` (with that account's token). Chatwoot not
    /// configured, or the account unknown, is a permanent error naming it: a job is never
    /// served in another account.
    pub fn chatwoot_for(&self, account_id: i64) -> Result<&ChatwootClient, JobError> {
        let accounts = self.chatwoot.as_deref().ok_or_else(|| {
            JobError::permanent(anyhow::anyhow!(
                "this stage needs the Chatwoot API for account {account_id}: set \
                 CHATWOOT_BASE_URL and COPYDESK_ACCOUNTS_FILE (or CHATWOOT_API_TOKEN and \
                 CHATWOOT_ACCOUNT_ID)"
            ))
        })?;
        accounts
            .client(account_id)
            .map_err(|unknown| JobError::permanent(anyhow::Error::new(unknown)))
    }

    /// The approval item a job is about; a missing one is a permanent error (purged, or a
    /// job from another installation).
    pub async fn approval_item(&self, id: &str) -> Result<ApprovalItem, JobError> {
        self.approvals
            .get(id)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| {
                JobError::permanent(anyhow::anyhow!(
                    "approval item {id} does not exist (purged?)"
                ))
            })
    }
}

/// A Chatwoot failure as a job error: retryable for 5xx, 408, 429, timeouts and connection
/// errors; permanent for the rest (401, 404, 422 …: trying again cannot help).
pub fn chatwoot_failure(error: ChatwootError) -> JobError {
    if error.is_retryable() {
        JobError::Retryable(error.into())
    } else {
        JobError::Permanent(error.into())
    }
}

/// How long the next attempt waits after an ambiguous message post (timeout, connection lost
/// after sending, 502/504) before it looks for the message and posts again: a Chatwoot that
/// was merely slow has stored it by then, so the look finds it instead of posting twice.
pub const AMBIGUOUS_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// A failed message post as a job error: like [`chatwoot_failure`], but an ambiguous failure
/// is retried no sooner than [`AMBIGUOUS_SETTLE`].
pub fn chatwoot_post_failure(error: ChatwootError) -> JobError {
    if error.is_ambiguous() {
        JobError::RetryAfter(AMBIGUOUS_SETTLE, error.into())
    } else {
        chatwoot_failure(error)
    }
}

/// A Redis failure while storing or reading state: retryable.
pub(crate) fn store_failure(error: ApprovalError) -> JobError {
    JobError::Retryable(error.into())
}

/// A queue failure while enqueueing a follow-up: retryable.
pub(crate) fn queue_failure(error: QueueError) -> JobError {
    JobError::Retryable(error.into())
}
