//! `lookup_knowledge` (`copydesk-knowledge`): supersedes the conversation's older pending
//! draft, finds passages for the customer message plus recent context, and enqueues
//! `generate_draft`. When the retriever keeps failing, the last attempt continues
//! **degraded**: the draft is made without knowledge and says so.

use std::sync::Arc;

use copydesk::jobs::{GenerateDraft, LookupKnowledge};
use copydesk::queue::{JobAttempt, JobError};

use anyhow::Context as _;

use super::context::recent_context;
use super::kind::{JobHandler, Kind, Role, Setup};
use super::{queue_failure, store_failure, Deps};
use crate::knowledge::{KnowledgeBackend, KnowledgeConfig, KnowledgeQuery};

impl Kind for LookupKnowledge {
    const ROLE: Role = Role::KNOWLEDGE;
    type Handler = Handler;
    fn handler(setup: &Setup<'_>) -> anyhow::Result<Handler> {
        let config = KnowledgeConfig::from_env(setup.env)?;
        let backend = KnowledgeBackend::build(&config).context(
            "building the knowledge index (COPYDESK_KNOWLEDGE_DIR / COPYDESK_KNOWLEDGE_URL)",
        )?;
        Ok(Handler::new(
            setup.deps.clone(),
            Arc::new(backend),
            config.top_k,
        ))
    }
}

impl JobHandler for Handler {
    type Job = LookupKnowledge;
    async fn run_job(&self, job: LookupKnowledge, attempt: JobAttempt) -> Result<(), JobError> {
        self.handle(job, attempt).await
    }
}

/// The `lookup_knowledge` handler.
#[derive(Clone)]
pub struct Handler {
    deps: Deps,
    backend: Arc<KnowledgeBackend>,
    top_k: usize,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("top_k", &self.top_k)
            .finish_non_exhaustive()
    }
}

impl Handler {
    /// A stage retrieving `top_k` passages from `backend`.
    pub fn new(deps: Deps, backend: Arc<KnowledgeBackend>, top_k: usize) -> Self {
        Self {
            deps,
            backend,
            top_k,
        }
    }

    /// Handles one attempt.
    pub async fn handle(&self, job: LookupKnowledge, attempt: JobAttempt) -> Result<(), JobError> {
        // One draft in flight per conversation: a newer message retires the older draft now,
        // before its replacement is even written.
        let superseded = self
            .deps
            .approvals
            .supersede_older(
                job.account_id.get(),
                job.conversation_id.get(),
                job.message_id.get(),
            )
            .await
            .map_err(store_failure)?;
        if superseded {
            tracing::info!(
                conversation = job.conversation_id.get(),
                "older pending draft superseded"
            );
        }
        // Learning data: the customer's answer to the last decision in this conversation.
        let mut conn = self.deps.queue.connection();
        copydesk::learning::record_customer_reply(
            &mut conn,
            self.deps.queue.keys(),
            job.account_id.get(),
            job.conversation_id.get(),
            job.meta.received_at_ms,
        )
        .await
        .map_err(JobError::retryable)?;
        // Context is best effort: without Chatwoot (or when it fails) the message stands alone.
        let context = match &self.deps.chatwoot {
            Some(chatwoot) => recent_context(
                chatwoot,
                job.conversation_id.get(),
                job.message_id.get(),
            )
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "conversation context unavailable; drafting without it");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let query = KnowledgeQuery::new(job.content.clone())
            .with_context(
                context
                    .iter()
                    .filter(|line| line.from_customer)
                    .map(|line| line.text.clone())
                    .collect(),
            )
            .with_top_k(self.top_k);
        let (passages, knowledge_degraded) = match self.backend.retrieve(&query).await {
            Ok(passages) => (passages, false),
            Err(error) if error.is_retryable() && !attempt.is_last() => {
                return Err(JobError::retryable(error));
            }
            Err(error) => {
                tracing::warn!(%error, attempt = attempt.attempt,
                    "knowledge lookup failed for good; drafting without knowledge (degraded)");
                (Vec::new(), true)
            }
        };
        let next = GenerateDraft {
            message: job,
            passages,
            knowledge_degraded,
            context,
        };
        self.deps
            .queue
            .enqueue(&next)
            .await
            .map_err(queue_failure)?;
        Ok(())
    }
}
