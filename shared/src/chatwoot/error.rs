//! [`ChatwootError`]: what can go wrong calling Chatwoot, classified for the retry policy.
//!
//! Callers ask two questions: may I try again ([`ChatwootError::is_retryable`]), and might the
//! failed call have been applied anyway ([`ChatwootError::is_ambiguous`]) — in which case a
//! side-effecting call such as posting a reply must check before posting again.

/// How much of an error answer's body is kept for the message.
const MAX_ERROR_BODY_CHARS: usize = 512;

/// A failed Chatwoot API call. `endpoint` is the fixed call name (`create_message`, …).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatwootError {
    /// Chatwoot answered with a non-2xx status.
    #[error("Chatwoot answered {status} to {endpoint}: {body}")]
    Status {
        /// The call.
        endpoint: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The start of the answer's body (Chatwoot's JSON error, usually).
        body: String,
    },
    /// No connection could be made: the request never reached Chatwoot.
    #[error("could not connect to Chatwoot for {endpoint}")]
    Connect {
        /// The call.
        endpoint: &'static str,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The timeout ran out; the request may have been sent and applied.
    #[error("Chatwoot did not answer {endpoint} in time")]
    Timeout {
        /// The call.
        endpoint: &'static str,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The connection broke after the request was (at least partly) sent: it may have been
    /// applied.
    #[error("connection to Chatwoot lost during {endpoint}")]
    ConnectionLost {
        /// The call.
        endpoint: &'static str,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// Chatwoot answered 2xx with a body that is not the documented shape. The call was
    /// applied; repeating it will not help.
    #[error("Chatwoot's answer to {endpoint} has an unexpected shape")]
    Decode {
        /// The call.
        endpoint: &'static str,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The answer was larger than `CHATWOOT_MAX_RESPONSE_BYTES`; it was not read further.
    #[error("Chatwoot's answer to {endpoint} is larger than the {limit}-byte cap (CHATWOOT_MAX_RESPONSE_BYTES)")]
    TooLarge {
        /// The call.
        endpoint: &'static str,
        /// The cap in bytes.
        limit: usize,
    },
    /// Chatwoot (or something in front of it) redirected to another origin; the redirect was
    /// not followed, so the token was not sent there.
    #[error("Chatwoot answered {status} to {endpoint}, redirecting to another host; not followed (the API token is never sent to another origin)")]
    Redirect {
        /// The call.
        endpoint: &'static str,
        /// The 3xx status.
        status: u16,
    },
    /// A write was refused before it was sent: the running job's lease is lost or expired,
    /// so another worker may be running the same job (see [`crate::queue::lease`]). Nothing
    /// was sent; the attempt is retried if this worker still owns the job.
    #[error("{endpoint} not sent: {source}")]
    LeaseLost {
        /// The call.
        endpoint: &'static str,
        /// The fence's verdict.
        #[source]
        source: crate::queue::LeaseLost,
    },
    /// The HTTP client could not be built or the request could not be formed.
    #[error("could not prepare the Chatwoot request {endpoint}")]
    Setup {
        /// The call (`client` while building the client).
        endpoint: &'static str,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
}

impl ChatwootError {
    /// True when trying again later may succeed: 408, 429, 5xx, timeouts and connection
    /// failures. Other 4xx (bad token, unknown conversation, invalid body) are permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::Connect { .. }
            | Self::Timeout { .. }
            | Self::ConnectionLost { .. }
            | Self::LeaseLost { .. } => true,
            Self::Decode { .. }
            | Self::Setup { .. }
            | Self::TooLarge { .. }
            | Self::Redirect { .. } => false,
        }
    }

    /// True when the call may have been applied although it failed: a timeout, a connection
    /// lost while waiting for the answer, or a gateway's 502/504 (the proxy gave up, Chatwoot
    /// behind it may not have). Before repeating a side effect, check whether it happened.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::ConnectionLost { .. } => true,
            Self::Status { status, .. } => matches!(status, 502 | 504),
            Self::Connect { .. }
            | Self::Decode { .. }
            | Self::Setup { .. }
            | Self::TooLarge { .. }
            | Self::Redirect { .. }
            | Self::LeaseLost { .. } => false,
        }
    }

    /// The HTTP status Chatwoot answered with, when it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::Redirect { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The call that failed.
    pub fn endpoint(&self) -> &'static str {
        match self {
            Self::Status { endpoint, .. }
            | Self::Connect { endpoint, .. }
            | Self::Timeout { endpoint, .. }
            | Self::ConnectionLost { endpoint, .. }
            | Self::Decode { endpoint, .. }
            | Self::LeaseLost { endpoint, .. }
            | Self::TooLarge { endpoint, .. }
            | Self::Redirect { endpoint, .. }
            | Self::Setup { endpoint, .. } => endpoint,
        }
    }

    /// Classifies a transport error of the HTTP client.
    pub(crate) fn from_transport(endpoint: &'static str, source: reqwest::Error) -> Self {
        // A connect timeout is both `is_connect` and `is_timeout`; nothing was sent then.
        if source.is_connect() {
            Self::Connect { endpoint, source }
        } else if source.is_timeout() {
            Self::Timeout { endpoint, source }
        } else if source.is_builder() {
            Self::Setup { endpoint, source }
        } else {
            Self::ConnectionLost { endpoint, source }
        }
    }

    /// An error status with the start of its body.
    pub(crate) fn from_status(endpoint: &'static str, status: u16, body: &[u8]) -> Self {
        let body: String = String::from_utf8_lossy(body)
            .chars()
            .take(MAX_ERROR_BODY_CHARS)
            .collect();
        Self::Status {
            endpoint,
            status,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_permanent_except_408_and_429() {
        for status in [400, 401, 403, 404, 405, 409, 422] {
            let err = ChatwootError::from_status("x", status, b"{}");
            assert!(!err.is_retryable(), "{status} must be permanent");
            assert!(!err.is_ambiguous(), "{status} was not applied");
        }
        for status in [408, 429] {
            assert!(
                ChatwootError::from_status("x", status, b"").is_retryable(),
                "{status} is retryable"
            );
        }
    }

    #[test]
    fn server_errors_are_retryable_and_gateway_timeouts_ambiguous() {
        for status in [500, 502, 503, 504] {
            assert!(ChatwootError::from_status("x", status, b"").is_retryable());
        }
        assert!(!ChatwootError::from_status("x", 500, b"").is_ambiguous());
        assert!(!ChatwootError::from_status("x", 503, b"").is_ambiguous());
        assert!(ChatwootError::from_status("x", 502, b"").is_ambiguous());
        assert!(ChatwootError::from_status("x", 504, b"").is_ambiguous());
    }

    #[test]
    fn long_error_bodies_are_cut() {
        let body = vec![b'a'; 10_000];
        let err = ChatwootError::from_status("x", 500, &body);
        assert!(err.to_string().len() < MAX_ERROR_BODY_CHARS + 100);
        assert_eq!(err.status(), Some(500));
        assert_eq!(err.endpoint(), "x");
    }
}
