//! `generate_draft` (`copydesk-drafter`): writes the draft (LLM or extractive), stores the
//! approval item, then enqueues `post_note` and `assign_conversation` in one deduplicated
//! step. When the drafter keeps failing, the last attempt stores a placeholder draft
//! ("operator writes manually") so the customer is still answered by a person.

use std::sync::Arc;

use copydesk::approval_facts::{self, ConfidenceBasis, DraftEvidence};
use copydesk::approvals::{CreateOutcome, DraftDoc, SourceRef};
use copydesk::domain::ApprovalId;
use copydesk::events::{publish_event, EventKind};
use copydesk::jobs::{AssignConversation, AssignReason, GenerateDraft, JobMeta, PostNote};
use copydesk::queue::{JobAttempt, JobError, NewJob};

use super::kind::{JobHandler, Kind, Role, Setup};
use super::{queue_failure, store_failure, Deps};
use crate::drafting::confidence::ConfidenceInputs;
use crate::drafting::{
    ContextMessage, Degradation, Draft, DraftRequest, Drafter, DrafterKind, DraftingConfig,
};

impl Kind for GenerateDraft {
    const ROLE: Role = Role::DRAFTER;
    type Handler = Handler;
    fn handler(setup: &Setup<'_>) -> anyhow::Result<Handler> {
        let config = DraftingConfig::from_env(setup.env)?;
        let drafter = Drafter::from_config(&config)?;
        Ok(Handler::new(setup.deps.clone(), Arc::new(drafter)))
    }
}

impl JobHandler for Handler {
    type Job = GenerateDraft;
    async fn run_job(&self, job: GenerateDraft, attempt: JobAttempt) -> Result<(), JobError> {
        self.handle(job, attempt).await
    }
}

/// The `generate_draft` handler.
#[derive(Clone)]
pub struct Handler {
    deps: Deps,
    drafter: Arc<Drafter>,
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handler")
            .field("drafter", &self.drafter.kind())
            .finish_non_exhaustive()
    }
}

impl Handler {
    /// A stage drafting with `drafter`.
    pub fn new(deps: Deps, drafter: Arc<Drafter>) -> Self {
        Self { deps, drafter }
    }

    /// Handles one attempt.
    pub async fn handle(&self, job: GenerateDraft, attempt: JobAttempt) -> Result<(), JobError> {
        let message = &job.message;
        let id = ApprovalId::for_message(
            message.account_id,
            message.conversation_id,
            message.message_id,
        )
        .into_string();
        // A replay after the item was stored only makes sure the follow-ups are queued.
        if let Some(item) = self.deps.approvals.get(&id).await.map_err(store_failure)? {
            return self.enqueue_follow_ups(&job, &item.doc).await;
        }
        let context = job
            .context
            .iter()
            .map(|line| ContextMessage {
                from_customer: line.from_customer,
                text: line.text.clone(),
            })
            .collect();
        let request = DraftRequest::from_job(&job, context);
        let draft = match self.drafter.draft(&request).await {
            Ok(draft) => draft,
            Err(error) if error.is_retryable() && !attempt.is_last() => {
                return Err(JobError::retryable(error));
            }
            Err(error) => {
                tracing::warn!(%error, attempt = attempt.attempt,
                    "drafter failed for good; storing a placeholder for the operator");
                self.drafter.placeholder(&request)
            }
        };
        let mut doc = draft_doc(id, &job, &draft);
        doc.cap_customer_text();
        self.store_evidence(&doc.id, &job, &request, &draft).await;
        let outcome = self
            .deps
            .approvals
            .create(&doc)
            .await
            .map_err(store_failure)?;
        if outcome != CreateOutcome::Exists {
            copydesk::observe::draft_stored(&doc);
            tracing::info!(approval = %doc.id, confidence = doc.confidence,
                action = doc.action.as_str(), priority = doc.priority.as_str(),
                superseded = outcome == CreateOutcome::CreatedSuperseded, "draft stored");
        }
        if outcome == CreateOutcome::Created {
            self.announce(&doc).await;
        }
        self.enqueue_follow_ups(&job, &doc).await
    }

    /// Stores what the drafter saw (conversation lines, passages with their text, the
    /// confidence's inputs) for the console's draft page, before the item itself so a retry
    /// after a crash in between finds it. Best effort: drafting does not depend on it.
    async fn store_evidence(
        &self,
        id: &str,
        job: &GenerateDraft,
        request: &DraftRequest,
        draft: &Draft,
    ) {
        let used = |source: &str| draft.sources.iter().any(|s| s.source == source);
        let used_passages: Vec<&copydesk::jobs::Passage> =
            job.passages.iter().filter(|p| used(&p.source)).collect();
        let inputs = ConfidenceInputs::measure(
            &request.question(),
            &used_passages,
            request.knowledge_degraded,
            draft.out_of_scope,
        );
        let evidence = DraftEvidence::bounded(
            job.context
                .iter()
                .map(|l| (l.from_customer, l.text.as_str())),
            job.passages.iter().map(|p| {
                (
                    p.source.as_str(),
                    p.title.as_str(),
                    p.text.as_str(),
                    p.relevance,
                    used(&p.source),
                )
            }),
            ConfidenceBasis {
                retrieval: inputs.retrieval,
                coverage: inputs.coverage,
                degraded: inputs.degraded,
                out_of_scope: inputs.out_of_scope,
                safety_words: draft.safety_matches.clone(),
            },
        );
        let mut conn = self.deps.queue.connection();
        if let Err(error) =
            approval_facts::store_evidence(&mut conn, self.deps.queue.keys(), id, &evidence).await
        {
            tracing::warn!(approval = %id, %error, "draft evidence not stored");
        }
    }

    /// Publishes the `draft` event for live operator views (best effort: the item is stored
    /// and listed whether or not anyone hears about it).
    async fn announce(&self, doc: &DraftDoc) {
        let event = serde_json::json!({
            "approval_id": doc.id,
            "account_id": doc.account_id,
            "conversation_id": doc.conversation_id,
            "priority": doc.priority.as_str(),
            "action": doc.action.as_str(),
            "confidence": doc.confidence,
            "customer_message": doc.customer_message,
            "created_at_ms": doc.created_at_ms,
        });
        let mut conn = self.deps.queue.connection();
        if let Err(error) =
            publish_event(&mut conn, self.deps.queue.keys(), EventKind::Draft, &event).await
        {
            tracing::warn!(approval = %doc.id, %error, "draft event not published");
        }
    }

    /// `post_note` and `assign_conversation` for the stored draft, queued together once.
    async fn enqueue_follow_ups(
        &self,
        job: &GenerateDraft,
        doc: &DraftDoc,
    ) -> Result<(), JobError> {
        let meta: JobMeta = job.message.meta.clone();
        let note = PostNote {
            meta: meta.clone(),
            account_id: doc.account(),
            conversation_id: doc.conversation(),
            approval_id: doc.approval_id(),
        };
        let assign = AssignConversation {
            meta,
            account_id: doc.account(),
            conversation_id: doc.conversation(),
            reason: AssignReason::Drafted {
                approval_id: doc.approval_id(),
                priority: doc.priority,
                text: doc.customer_message.clone(),
                vip: doc.vip,
            },
        };
        let jobs = [
            NewJob::encode(&note).map_err(queue_failure)?,
            NewJob::encode(&assign).map_err(queue_failure)?,
        ];
        self.deps
            .queue
            .enqueue_batch(&[format!("drafted:{}", doc.id)], &jobs)
            .await
            .map_err(queue_failure)?;
        Ok(())
    }
}

/// The approval item's immutable part for `draft`.
///
/// The doc keeps the current span's trace context, so the decision continues the trace.
pub fn draft_doc(id: String, job: &GenerateDraft, draft: &Draft) -> DraftDoc {
    let message = &job.message;
    let trace = copydesk::telemetry::TraceContext::current();
    DraftDoc {
        id,
        account_id: message.account_id.get(),
        conversation_id: message.conversation_id.get(),
        message_id: message.message_id.get(),
        customer_message: message.content.clone(),
        draft: draft.text.clone(),
        confidence: draft.confidence,
        action: draft.action,
        priority: draft.priority,
        sentiment: draft.sentiment.as_str().to_owned(),
        sources: draft
            .sources
            .iter()
            .map(|s| SourceRef {
                source: s.source.clone(),
                title: s.title.clone(),
                relevance: s.relevance,
            })
            .collect(),
        degraded: draft
            .degraded
            .iter()
            .map(|d| {
                match d {
                    Degradation::KnowledgeUnavailable => "knowledge_unavailable",
                    Degradation::NoKnowledge => "no_knowledge",
                    Degradation::DrafterUnavailable => "drafter_unavailable",
                    Degradation::Truncated => "truncated",
                }
                .to_owned()
            })
            .collect(),
        placeholder: draft.backend == DrafterKind::Placeholder,
        safety: draft.safety,
        vip: draft.vip,
        suspicious: draft.suspicious.clone(),
        drafter: match draft.backend {
            DrafterKind::Extractive => "extractive",
            DrafterKind::Llm => "llm",
            DrafterKind::Placeholder => "placeholder",
        }
        .to_owned(),
        delivery_id: message.meta.delivery_id.to_string(),
        received_at_ms: message.meta.received_at_ms,
        created_at_ms: copydesk::domain::now_ms(),
        traceparent: trace.as_ref().map(|t| t.traceparent.clone()),
        tracestate: trace.and_then(|t| t.tracestate),
    }
}
