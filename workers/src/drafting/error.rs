//! Why a draft could not be made, classified so the job runner knows whether to retry.

/// Drafting failed.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    /// The model endpoint could not be reached or answered with a transient failure
    /// (timeout, connection refused, 5xx, 429): worth retrying.
    #[error("drafting model unavailable: {0}")]
    Unavailable(String),
    /// The model endpoint answered, but the request or the answer is unusable (4xx,
    /// malformed or empty completion): retrying will not help.
    #[error("drafting model rejected the request: {0}")]
    Rejected(String),
}

impl DraftError {
    /// True when the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
