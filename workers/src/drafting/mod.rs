//! Drafting: a reply draft for a customer message, with confidence, sources and advice.
//!
//! [`Drafter`] pairs a backend ([`ExtractiveDrafter`], offline and the default, or
//! [`LlmDrafter`], OpenAI-compatible) with a [`DraftPolicy`]. Whatever the backend, the
//! classification is the same: [`confidence`] from retrieval relevance and answer coverage,
//! then action and priority from the policy, a safety flag, a VIP flag and a sentiment hint.
//! When the LLM is down for good, [`Drafter::placeholder`] gives the operator an empty draft
//! that still carries the priority.

pub mod confidence;
mod config;
mod draft;
mod error;
mod extractive;
mod intent;
mod lexicon;
mod llm;
mod policy;
mod request;
mod safety_steps;
mod sentiment;
mod suspicious;
mod units;

#[cfg(test)]
mod llm_tests;
#[cfg(test)]
mod tests;

pub use config::{DraftingConfig, LlmConfig, DEFAULT_LLM_MAX_TOKENS, DEFAULT_LLM_TIMEOUT};
pub use draft::{Action, Degradation, Draft, DrafterKind, Priority, Sentiment, Source};
pub use error::DraftError;
pub use extractive::ExtractiveDrafter;
pub use llm::{LlmDrafter, ModelCheck, MAX_COMPLETION_BODY_BYTES};
pub use policy::{
    DraftPolicy, DEFAULT_ESCALATE_THRESHOLD, DEFAULT_REFERRAL_PHRASES, DEFAULT_SAFETY_WORDS,
    DEFAULT_SEND_THRESHOLD, DEFAULT_VIP_ATTRIBUTES,
};
pub use request::{ContextMessage, DraftRequest};
pub use safety_steps::{GENERIC_SAFETY_STEP, SAFETY_HEADING};
pub use sentiment::estimate_sentiment;

use confidence::ConfidenceInputs;
use extractive::Composition;

/// Text of the placeholder draft.
pub const PLACEHOLDER_TEXT: &str = "Copydesk could not draft a reply: operator writes manually.";

/// Which backend writes the text.
#[derive(Debug, Clone)]
pub enum DrafterBackend {
    /// Offline, sentences from the passages.
    Extractive(ExtractiveDrafter),
    /// An OpenAI-compatible model.
    Llm(LlmDrafter),
}

/// A drafter: a backend plus the classification policy.
#[derive(Debug, Clone)]
pub struct Drafter {
    backend: DrafterBackend,
    policy: DraftPolicy,
}

/// What the customer's words and attributes say, before any drafting.
struct Signals {
    safety_matches: Vec<String>,
    vip: bool,
    sentiment: Sentiment,
}

impl Drafter {
    /// A drafter from parts.
    pub fn new(backend: DrafterBackend, policy: DraftPolicy) -> Self {
        Self { backend, policy }
    }

    /// The extractive drafter with `policy`.
    pub fn extractive(policy: DraftPolicy) -> Self {
        Self::new(DrafterBackend::Extractive(ExtractiveDrafter::new()), policy)
    }

    /// The drafter `config` describes: the LLM when configured, else extractive.
    pub fn from_config(config: &DraftingConfig) -> Result<Self, DraftError> {
        let backend = match &config.llm {
            Some(llm) => DrafterBackend::Llm(LlmDrafter::new(llm.clone())?),
            None => DrafterBackend::Extractive(ExtractiveDrafter::new()),
        };
        Ok(Self::new(backend, config.policy.clone()))
    }

    /// Start-up check of the backend: for the LLM, that the server serves the configured
    /// model ([`LlmDrafter::check_model`]; logged, an error only when the server says no).
    pub async fn check_backend(&self) -> Result<(), DraftError> {
        let DrafterBackend::Llm(llm) = &self.backend else {
            return Ok(());
        };
        match llm.check_model().await? {
            ModelCheck::Listed => tracing::info!("LLM server lists the configured model"),
            ModelCheck::NoModelList => {
                tracing::info!("LLM server has no model list; model name used unchecked")
            }
            ModelCheck::Unchecked(why) => {
                tracing::warn!(%why, "could not check the LLM model at start-up")
            }
        }
        Ok(())
    }

    /// The classification policy.
    pub fn policy(&self) -> &DraftPolicy {
        &self.policy
    }

    /// Which backend writes the text.
    pub fn kind(&self) -> DrafterKind {
        match self.backend {
            DrafterBackend::Extractive(_) => DrafterKind::Extractive,
            DrafterBackend::Llm(_) => DrafterKind::Llm,
        }
    }

    /// Drafts a reply and classifies it. Only the LLM backend can fail
    /// ([`DraftError::is_retryable`] tells the runner whether to retry; when retries are
    /// spent, use [`Drafter::placeholder`]).
    pub async fn draft(&self, request: &DraftRequest) -> Result<Draft, DraftError> {
        let signals = self.signals(request);
        let safety = &signals.safety_matches;
        let composition = match &self.backend {
            DrafterBackend::Extractive(drafter) => drafter.compose(request, safety),
            DrafterBackend::Llm(drafter) => drafter.compose(request, safety).await?,
        };
        Ok(self.classify(request, signals, composition, self.kind()))
    }

    /// The draft for when no reply could be written: [`PLACEHOLDER_TEXT`], confidence 0,
    /// action `Review` (`Escalate` when there is no knowledge either), priority and flags
    /// computed as usual.
    pub fn placeholder(&self, request: &DraftRequest) -> Draft {
        placeholder(request, &self.policy)
    }

    fn signals(&self, request: &DraftRequest) -> Signals {
        let texts = std::iter::once(request.message.as_str()).chain(request.customer_context());
        Signals {
            safety_matches: self.policy.safety_matches(texts),
            vip: self.policy.is_vip(&[
                &request.contact_attributes,
                &request.conversation_attributes,
            ]),
            sentiment: estimate_sentiment(&request.message),
        }
    }

    fn classify(
        &self,
        request: &DraftRequest,
        signals: Signals,
        composition: Composition,
        backend: DrafterKind,
    ) -> Draft {
        let policy = &self.policy;
        let safety = !signals.safety_matches.is_empty();
        let used: Vec<&copydesk::jobs::Passage> = composition
            .used
            .iter()
            .filter_map(|&i| request.passages.get(i))
            .collect();
        let out_of_scope = !policy.referral_matches(&composition.answer).is_empty();
        let inputs = ConfidenceInputs::measure(
            &request.question(),
            &used,
            request.knowledge_degraded,
            out_of_scope,
        );
        let confidence = inputs.score();
        let has_knowledge = !used.is_empty();
        let mut sources: Vec<Source> = Vec::new();
        for passage in &used {
            if !sources.iter().any(|s| s.source == passage.source) {
                sources.push(Source {
                    source: passage.source.clone(),
                    title: passage.title.clone(),
                    relevance: passage.relevance,
                });
            }
        }
        sources.sort_by(|a, b| b.relevance.total_cmp(&a.relevance));
        let mut degraded = degradations(request);
        let mut action = policy.action(confidence, safety, has_knowledge);
        if composition.truncated {
            degraded.push(Degradation::Truncated);
        }
        // A cut-off reply, a reply to an angry customer, or one to a message that asks
        // nothing ("Thanks, that worked!") is for a person to judge, however well its words
        // match the knowledge.
        if action == Action::Send
            && (composition.truncated
                || signals.sentiment == Sentiment::Angry
                || !policy.asks_something(&request.message)
                || !answers_follow_up(request, &composition.answer))
        {
            action = Action::Review;
        }
        // A reply that asks for card details or passwords, promises a refund or carries a
        // link the knowledge does not is never sent as is (prompt injection, or a model
        // making things up).
        let suspicious = suspicious::suspicious_reasons(&composition.text, &request.passages);
        if action == Action::Send && !suspicious.is_empty() {
            action = Action::Review;
        }
        Draft {
            text: composition.text,
            confidence,
            sources,
            action,
            priority: policy.priority(&request.message, safety, signals.vip, signals.sentiment),
            sentiment: signals.sentiment,
            safety,
            safety_matches: signals.safety_matches,
            vip: signals.vip,
            out_of_scope,
            suspicious,
            degraded,
            backend,
        }
    }
}

/// False for a follow-up ("and in mm?") whose own terms the reply does not contain: the
/// knowledge matched the previous question, the reply may answer that one instead.
fn answers_follow_up(request: &DraftRequest, answer: &str) -> bool {
    if request.question() == request.message {
        return true;
    }
    let said = crate::knowledge::analysis::content_terms(answer);
    crate::knowledge::analysis::content_terms(&request.message)
        .iter()
        .all(|t| said.contains(t))
}

fn degradations(request: &DraftRequest) -> Vec<Degradation> {
    let mut degraded = Vec::new();
    if request.knowledge_degraded {
        degraded.push(Degradation::KnowledgeUnavailable);
    }
    if request.passages.is_empty() {
        degraded.push(Degradation::NoKnowledge);
    }
    degraded
}

/// The placeholder draft (see [`Drafter::placeholder`]).
pub fn placeholder(request: &DraftRequest, policy: &DraftPolicy) -> Draft {
    let drafter = Drafter::extractive(policy.clone());
    let signals = drafter.signals(request);
    let safety = !signals.safety_matches.is_empty();
    let mut degraded = degradations(request);
    degraded.push(Degradation::DrafterUnavailable);
    Draft {
        text: PLACEHOLDER_TEXT.to_owned(),
        confidence: 0,
        sources: request
            .passages
            .iter()
            .map(|p| Source {
                source: p.source.clone(),
                title: p.title.clone(),
                relevance: p.relevance,
            })
            .collect(),
        action: if request.passages.is_empty() {
            Action::Escalate
        } else {
            Action::Review
        },
        priority: policy.priority(&request.message, safety, signals.vip, signals.sentiment),
        sentiment: signals.sentiment,
        safety,
        safety_matches: signals.safety_matches,
        vip: signals.vip,
        out_of_scope: false,
        suspicious: Vec::new(),
        degraded,
        backend: DrafterKind::Placeholder,
    }
}
