//! `post_note` (`copydesk-notes`): posts an approval item's draft as a private note formatted
//! for agents (confidence, action, priority, sources) and records the note id on the item.
//! The note is posted once through [`super::post_once`]: a retry after an ambiguous failure
//! (or a second holder of the job) finds the note already posted instead of posting another. If Chatwoot keeps failing, the job ends
//! in the dead-letter store and the approval item stays usable without its note.

use std::sync::Arc;

use copydesk::approvals::ApprovalItem;
use copydesk::chatwoot::{ChatwootAccounts, ChatwootClient, NewMessage};
use copydesk::domain::now_ms;
use copydesk::jobs::PostNote;
use copydesk::metrics::PIPELINE_LATENCY_SECONDS;
use copydesk::queue::{JobAttempt, JobError};

use super::kind::{JobHandler, Kind, Role, Setup};
use super::post_once::{PostOnce, Posted, Step};
use super::{store_failure, Deps};

impl Kind for PostNote {
    const ROLE: Role = Role::NOTES;
    const CALLS_CHATWOOT: bool = true;
    type Handler = Handler;
    fn handler(setup: &Setup<'_>) -> anyhow::Result<Handler> {
        Ok(Handler::with_accounts(
            setup.deps.clone(),
            setup.chatwoot()?,
        ))
    }
}

impl JobHandler for Handler {
    type Job = PostNote;
    async fn run_job(&self, job: PostNote, attempt: JobAttempt) -> Result<(), JobError> {
        self.handle(job, attempt).await
    }
}

/// The `post_note` handler.
#[derive(Clone, Debug)]
pub struct Handler {
    deps: Deps,
    chatwoot: Arc<ChatwootAccounts>,
}

/// The idempotency key of an approval item's private note.
pub fn note_key(approval_id: &str) -> String {
    format!("copydesk-note:{approval_id}")
}

impl Handler {
    /// A stage posting through `chatwoot` (one account).
    pub fn new(deps: Deps, chatwoot: Arc<ChatwootClient>) -> Self {
        let single = ChatwootAccounts::single(ChatwootClient::clone(&chatwoot));
        Self::with_accounts(deps, Arc::new(single))
    }

    /// A stage posting through the client of each job's account.
    pub fn with_accounts(deps: Deps, chatwoot: Arc<ChatwootAccounts>) -> Self {
        Self { deps, chatwoot }
    }

    /// Handles one attempt: posts the note once ([`PostOnce`]) and records its id.
    pub async fn handle(&self, job: PostNote, _attempt: JobAttempt) -> Result<(), JobError> {
        let approvals = &self.deps.approvals;
        let item = self.deps.approval_item(job.approval_id.as_str()).await?;
        if item.note_id.is_some() {
            return Ok(());
        }
        let chatwoot = account_client(&self.chatwoot, job.account_id.get(), item.doc.account_id)?;
        let message = NewMessage::private_note(format_note(&item))
            .with_idempotency_key(note_key(&item.doc.id));
        let post = PostOnce {
            chatwoot,
            queue: &self.deps.queue,
            conversation_id: job.conversation_id.get(),
            after_id: item.doc.message_id,
            message,
        };
        let record = async |posted: &Posted<()>| match posted {
            Posted::Found(id) | Posted::New(id) => approvals
                .set_note_id(&item.doc.id, *id)
                .await
                .map_err(store_failure),
            Posted::Skipped(()) => Ok(()),
        };
        if let Posted::New(note) = post.run(|_| Step::Post, record).await? {
            let latency_ms = (now_ms() - job.meta.received_at_ms).max(0);
            metrics::histogram!(PIPELINE_LATENCY_SECONDS).record(latency_ms as f64 / 1000.0);
            tracing::info!(note, latency_ms, "draft posted as a private note");
        }
        Ok(())
    }
}

/// The client of the job's account; a job whose account differs from its approval item's,
/// or names an unconfigured account, is a permanent error (never a post in another account).
pub(crate) fn account_client(
    accounts: &ChatwootAccounts,
    job_account: i64,
    item_account: i64,
) -> Result<&ChatwootClient, JobError> {
    if job_account != item_account {
        return Err(JobError::permanent(anyhow::anyhow!(
            "job for Chatwoot account {job_account} but its approval item belongs to account \
             {item_account}"
        )));
    }
    accounts
        .client(job_account)
        .map_err(|unknown| JobError::permanent(anyhow::Error::new(unknown)))
}

/// The private note's text: a header line with the drafter's advice, the draft, the sources
/// and how to act on it.
pub fn format_note(item: &ApprovalItem) -> String {
    let doc = &item.doc;
    let mut note = format!(
        "Copydesk draft: confidence {}/100 · recommended: {} · priority: {}",
        doc.confidence,
        doc.action.as_str().to_uppercase(),
        doc.priority.as_str()
    );
    if doc.vip {
        note.push_str(" · VIP");
    }
    if doc.safety {
        note.push_str(" · SAFETY");
    }
    if !doc.suspicious.is_empty() {
        note.push_str(" · SUSPICIOUS: ");
        note.push_str(&doc.suspicious.join("; "));
    }
    note.push_str("\n\n");
    note.push_str(&doc.draft);
    note.push_str("\n\nSources:");
    if doc.sources.is_empty() {
        note.push_str(" none");
    }
    for source in &doc.sources {
        note.push_str(&format!(
            "\n- {} ({}, relevance {:.2})",
            source.title, source.source, source.relevance
        ));
    }
    if !doc.degraded.is_empty() {
        note.push_str(&format!("\nDegraded: {}", doc.degraded.join(", ")));
    }
    note.push_str(&format!(
        "\nApproval {} · sentiment {} · drafter {}. Approve, edit, reject or escalate it in the Copydesk queue.",
        doc.id, doc.sentiment, doc.drafter
    ));
    note
}
