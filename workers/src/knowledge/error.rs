//! Why a knowledge lookup failed, classified so the job runner knows whether to retry.

use std::path::PathBuf;

/// A knowledge lookup or index build failed.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The retriever could not be reached or answered with a transient failure (timeout,
    /// connection refused, 5xx, 429): worth retrying.
    #[error("knowledge service unavailable: {0}")]
    Unavailable(String),
    /// The retriever answered, but the request or the answer is unusable (4xx, malformed
    /// JSON): retrying the same request will not help.
    #[error("knowledge service rejected the lookup: {0}")]
    Rejected(String),
    /// The knowledge folder could not be read.
    #[error("cannot read knowledge from {path}: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The embedded index failed (build or search).
    #[error("knowledge index failed: {0}")]
    Index(#[from] tantivy::TantivyError),
}

impl KnowledgeError {
    /// True when the same lookup may succeed later (the runner retries, then degrades).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
