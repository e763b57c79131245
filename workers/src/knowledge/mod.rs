//! Knowledge lookup: the top passages for a customer message, from the embedded index or an
//! HTTP retriever.
//!
//! - [`EmbeddedIndex`]: a tantivy (BM25) index in RAM over a folder of `.md`/`.txt` files.
//! - [`HttpRetriever`]: a LlamaIndex retriever server, llama-index-networks or LlamaCloud
//!   (contract on the type; answer shapes in [`llamaindex`]).
//! - [`KnowledgeBackend`]: one of the two, chosen by [`KnowledgeConfig`].
//!
//! Every backend reports [`Passage::relevance`] in `0..=1`, so the drafter can turn it into a
//! confidence without knowing which backend answered.

pub mod analysis;
pub mod answered_before;
mod config;
mod embedded;
mod error;
mod http;
pub mod learned;
pub mod llamaindex;
mod markdown;
mod spelling;

#[cfg(test)]
pub(crate) mod test_server;

use futures::future::BoxFuture;

pub use answered_before::AnsweredBefore;
pub use config::{HttpKnowledge, KnowledgeConfig, KnowledgeSource, DEFAULT_KNOWLEDGE_TIMEOUT};
pub use copydesk::jobs::Passage;
pub use embedded::EmbeddedIndex;
pub use error::KnowledgeError;
pub(crate) use http::{read_capped, CappedReadError};
pub use http::{HttpRetriever, MAX_RETRIEVER_BODY_BYTES};
pub use learned::{LearnedAnswers, LearnedConfig};
pub use llamaindex::ScoreKind;

/// How many passages a lookup returns when the caller does not say.
pub const DEFAULT_TOP_K: usize = 4;

/// Context messages beyond this many are ignored (the newest are kept).
pub const MAX_CONTEXT_MESSAGES: usize = 5;

/// What to look up: the customer's message, a few recent messages for context, how many
/// passages to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeQuery {
    /// The customer message being answered.
    pub message: String,
    /// Recent messages of the conversation, oldest first (customer and agent); they help
    /// with follow-ups like "and in millimetres?" but weigh less than the message.
    pub context: Vec<String>,
    /// Passages wanted.
    pub top_k: usize,
}

impl KnowledgeQuery {
    /// A query for `message` without context, returning [`DEFAULT_TOP_K`] passages.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            context: Vec::new(),
            top_k: DEFAULT_TOP_K,
        }
    }

    /// Adds recent messages (oldest first); only the newest [`MAX_CONTEXT_MESSAGES`] are kept.
    pub fn with_context(mut self, context: Vec<String>) -> Self {
        let skip = context.len().saturating_sub(MAX_CONTEXT_MESSAGES);
        self.context = context.into_iter().skip(skip).collect();
        self
    }

    /// Sets how many passages to return.
    pub fn with_top_k(mut self, top_k: usize) -> Self {
        self.top_k = top_k;
        self
    }

    /// The context messages actually used (newest [`MAX_CONTEXT_MESSAGES`]).
    fn recent_context(&self) -> &[String] {
        let skip = self.context.len().saturating_sub(MAX_CONTEXT_MESSAGES);
        &self.context[skip..]
    }
}

/// Something that finds passages for a query. Object-safe: hold it as `Arc<dyn Retriever>`.
pub trait Retriever: Send + Sync {
    /// The best passages for `query`, best first, at most `query.top_k`, relevance in `0..=1`.
    fn retrieve<'a>(
        &'a self,
        query: &'a KnowledgeQuery,
    ) -> BoxFuture<'a, Result<Vec<Passage>, KnowledgeError>>;
}

/// The configured knowledge backend.
#[derive(Debug)]
pub enum KnowledgeBackend {
    /// The in-RAM index over a folder.
    Embedded(EmbeddedIndex),
    /// A remote retrieve endpoint.
    Http(HttpRetriever),
}

impl KnowledgeBackend {
    /// Builds the backend `config` names (reads and indexes the folder for the embedded one).
    pub fn build(config: &KnowledgeConfig) -> Result<Self, KnowledgeError> {
        match &config.source {
            KnowledgeSource::Directory(dir) => Ok(Self::Embedded(EmbeddedIndex::build(dir)?)),
            KnowledgeSource::Url(http) => Ok(Self::Http(
                HttpRetriever::new(http.url.clone(), http.timeout)?
                    .with_api_key(http.api_key.clone())
                    .with_score_kind(http.score),
            )),
        }
    }

    /// The best passages for `query` (see [`Retriever::retrieve`]).
    #[tracing::instrument(name = "retrieve", skip_all, fields(
        otel.name = "retrieve", backend = if matches!(self, Self::Http(_)) { "http" } else { "embedded" },
        top_k = query.top_k))]
    pub async fn retrieve(&self, query: &KnowledgeQuery) -> Result<Vec<Passage>, KnowledgeError> {
        match self {
            Self::Embedded(index) => index.search(query),
            Self::Http(http) => http.retrieve_passages(query).await,
        }
    }

    /// Rebuilds the embedded index from its folder; a no-op for the HTTP backend.
    pub fn reload(&self) -> Result<(), KnowledgeError> {
        match self {
            Self::Embedded(index) => index.reload(),
            Self::Http(_) => Ok(()),
        }
    }
}

impl Retriever for KnowledgeBackend {
    fn retrieve<'a>(
        &'a self,
        query: &'a KnowledgeQuery,
    ) -> BoxFuture<'a, Result<Vec<Passage>, KnowledgeError>> {
        Box::pin(KnowledgeBackend::retrieve(self, query))
    }
}
