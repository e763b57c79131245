//! `lookup_knowledge` (`copydesk-knowledge`): supersedes the conversation's older pending
//! draft, finds passages for the customer message plus recent context, and enqueues
//! `generate_draft`. When the retriever keeps failing, the last attempt continues
//! **degraded**: the draft is made without knowledge and says so.

use std::sync::Arc;

use copydesk::jobs::{GenerateDraft, LookupKnowledge};
use copydesk::queue::{Burst, JobAttempt, JobError};

use anyhow::Context as _;

use super::context::{context_and_burst, recent_context};
use super::kind::{JobHandler, Kind, Role, Setup};
use super::{queue_failure, store_failure, Deps};
use crate::drafting::DraftPolicy;
use crate::knowledge::{
    KnowledgeBackend, KnowledgeConfig, KnowledgeQuery, LearnedAnswers, LearnedConfig, Passage,
};

impl Kind for LookupKnowledge {
    const ROLE: Role = Role::KNOWLEDGE;
    type Handler = Handler;
    fn handler(setup: &Setup<'_>) -> anyhow::Result<Handler> {
        let config = KnowledgeConfig::from_env(setup.env)?;
        let backend = KnowledgeBackend::build(&config).context(
            "building the knowledge index (COPYDESK_KNOWLEDGE_DIR / COPYDESK_KNOWLEDGE_URL)",
        )?;
        let learned = LearnedConfig::from_env(setup.env)?;
        let policy = DraftPolicy::from_env(setup.env)?;
        Ok(
            Handler::new(setup.deps.clone(), Arc::new(backend), config.top_k)
                .with_learned(learned)
                .with_policy(policy)
                .with_burst(Burst::from_env(setup.env)?),
        )
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
    /// Operators' earlier answers ("answered before" passages), when learning is on.
    learned: Option<Arc<LearnedAnswers>>,
    /// The drafting policy's safety words, spelled right in the query (see [`knowledge_query`]).
    policy: Arc<DraftPolicy>,
    /// When on, the customer's messages of one burst are drafted as one question.
    burst: Burst,
}

/// The knowledge query for a customer message and the customer's recent messages. When the
/// message has safety words (spelled right or with a typo, "leakin"), the query also asks
/// for them as the policy spells them and for "safety steps", so the passage with the steps
/// is found even when the customer's other words point at another section.
pub fn knowledge_query(
    message: &str,
    customer_context: Vec<String>,
    top_k: usize,
    policy: &DraftPolicy,
) -> KnowledgeQuery {
    let safety = policy.safety_matches([message]);
    let text = if safety.is_empty() {
        message.to_owned()
    } else {
        format!("{message} ({}; safety steps)", safety.join(", "))
    };
    KnowledgeQuery::new(text)
        .with_context(customer_context)
        .with_top_k(top_k)
}

impl Handler {
    /// A stage retrieving `top_k` passages from `backend`.
    pub fn new(deps: Deps, backend: Arc<KnowledgeBackend>, top_k: usize) -> Self {
        Self {
            deps,
            backend,
            top_k,
            learned: None,
            policy: Arc::new(DraftPolicy::default()),
            burst: Burst::OFF,
        }
    }

    /// Drafts a burst of customer messages as one question (the ingress enqueues only the
    /// burst's last message; see [`copydesk::queue::Burst`]).
    pub fn with_burst(mut self, burst: Burst) -> Self {
        self.burst = burst;
        self
    }

    /// Uses `policy`'s safety words in the query (the default policy's otherwise).
    pub fn with_policy(mut self, policy: DraftPolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Also offers operators' earlier final replies to similar questions of the same account
    /// (read from the learning stream; see [`crate::knowledge::learned`]).
    pub fn with_learned(mut self, config: LearnedConfig) -> Self {
        self.learned = config
            .enabled
            .then(|| Arc::new(LearnedAnswers::new(self.deps.queue.clone(), config)));
        self
    }

    /// Handles one attempt.
    pub async fn handle(&self, job: LookupKnowledge, attempt: JobAttempt) -> Result<(), JobError> {
        // With Chatwoot configured, an unconfigured account is a permanent error here, before
        // anything is stored or drafted for it.
        let chatwoot = match &self.deps.chatwoot {
            Some(_) => Some(self.deps.chatwoot_for(job.account_id.get())?),
            None => None,
        };
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
        let mut job = job;
        let context = match chatwoot {
            Some(chatwoot) if self.burst.is_on() => {
                match context_and_burst(
                    chatwoot,
                    job.conversation_id.get(),
                    job.message_id.get(),
                    job.created_at,
                    self.burst.cap,
                )
                .await
                {
                    Ok((context, burst)) => {
                        // The burst is one question: its messages, oldest first, then this one.
                        if !burst.is_empty() {
                            tracing::info!(
                                conversation = job.conversation_id.get(),
                                messages = burst.len() + 1,
                                "drafting once for a burst of customer messages"
                            );
                            job.content = format!("{}\n{}", burst.join("\n"), job.content);
                        }
                        context
                    }
                    Err(error) => {
                        tracing::warn!(%error, "conversation context unavailable; drafting without it");
                        Vec::new()
                    }
                }
            }
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
        let customer_context = context
            .iter()
            .filter(|line| line.from_customer)
            .map(|line| line.text.clone())
            .collect();
        let query = knowledge_query(&job.content, customer_context, self.top_k, &self.policy);
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
        let passages = self.with_answers_before(&job, passages).await;
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

    /// `passages` plus the account's earlier answers to similar questions, best first, at
    /// most `top_k`.
    async fn with_answers_before(
        &self,
        job: &LookupKnowledge,
        mut passages: Vec<Passage>,
    ) -> Vec<Passage> {
        let Some(learned) = &self.learned else {
            return passages;
        };
        let answers = learned
            .search(job.account_id.get(), &job.content, self.top_k)
            .await;
        if answers.is_empty() {
            return passages;
        }
        passages.extend(answers);
        passages.sort_by(|a, b| b.relevance.total_cmp(&a.relevance));
        passages.truncate(self.top_k);
        passages
    }
}
