//! [`IngressError`] and the one place that maps it to a status code and a JSON body;
//! [`StartupError`], why the ingress could not start.

use std::net::SocketAddr;

use bytes::Bytes;
use copydesk::event::EventError;
use copydesk::queue::QueueError;
use copydesk::signature::SignatureError;
use http::{header, Response, StatusCode};
use http_body_util::Full;

use crate::response::json;
use crate::spool::{AppendError, SpoolError};

/// Longest error message answered, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// `text` cut to [`MAX_MESSAGE_CHARS`] (with `…`).
pub(crate) fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    cut.push('…');
    cut
}

/// Everything that stops a request from being served as asked.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// No route for the path.
    #[error("no such path")]
    NotFound,
    /// The path exists, the method does not.
    #[error("method not allowed; use {allowed}")]
    MethodNotAllowed {
        /// The methods the path accepts (the `Allow` header).
        allowed: &'static str,
    },
    /// The body is over the limit (by `Content-Length`, or counted while streaming).
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body could not be read (client went away, bad chunking).
    #[error("could not read the request body: {0}")]
    BodyUnreadable(String),
    /// The body did not arrive in time.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// Too many request bodies are being read at once (the in-memory body budget is spent).
    #[error("too many webhook bodies in flight, try again later")]
    Busy,
    /// Missing, malformed, stale or wrong signature. The reason is logged, never answered.
    #[error("signature rejected: {0}")]
    Unauthorized(#[from] SignatureError),
    /// A legacy webhook's URL token is no account's, or the body names another account.
    /// Answered like a bad signature.
    #[error("legacy webhook token rejected")]
    LegacyToken,
    /// A legacy webhook's event time is missing or outside the window (replay protection).
    #[error("legacy webhook refused: {0}")]
    StaleEvent(crate::legacy::StaleEvent),
    /// `X-Chatwoot-Delivery` is missing or not a plausible id.
    #[error("missing or invalid X-Chatwoot-Delivery header")]
    BadDeliveryId,
    /// The body is not a webhook we can read; the message says where.
    #[error(transparent)]
    Malformed(#[from] EventError),
    /// Redis did not take the job: answering 2xx would lose the event.
    #[error("queue unavailable: {0}")]
    RedisUnavailable(#[source] QueueError),
    /// Redis did not answer within the enqueue timeout.
    #[error("queue did not answer in time")]
    RedisTimeout,
    /// Redis is unreachable and the spool holds `COPYDESK_SPOOL_MAX_BYTES` already.
    #[error("queue unavailable and the spool is full ({max_bytes} bytes)")]
    SpoolFull {
        /// The configured bound.
        max_bytes: u64,
    },
    /// Redis is unreachable and the spool cannot be written (disk full, I/O error, closing).
    #[error("queue unavailable and the spool cannot be written: {0}")]
    SpoolUnwritable(String),
    /// A bug: e.g. a job that does not encode.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The body of every 401: the same bytes whatever the reason.
const UNAUTHORIZED_MESSAGE: &str = "missing, malformed, stale or invalid webhook signature";

impl IngressError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyUnreadable(_) | Self::BadDeliveryId | Self::Malformed(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unauthorized(_) | Self::LegacyToken | Self::StaleEvent(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::RedisUnavailable(_)
            | Self::RedisTimeout
            | Self::SpoolFull { .. }
            | Self::SpoolUnwritable(_)
            | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `outcome` label of `copydesk_webhooks_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) | Self::LegacyToken => "unauthorized",
            Self::StaleEvent(_) => "stale",
            Self::PayloadTooLarge { .. } => "too_large",
            Self::BodyTimeout => "timeout",
            Self::Busy => "busy",
            Self::RedisUnavailable(_)
            | Self::RedisTimeout
            | Self::SpoolFull { .. }
            | Self::SpoolUnwritable(_) => "unavailable",
            Self::Internal(_) => "error",
            _ => "malformed",
        }
    }

    /// A short machine-readable code for the JSON body.
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyUnreadable(_) => "body_unreadable",
            Self::BodyTimeout => "body_timeout",
            Self::Busy => "busy",
            Self::Unauthorized(_) | Self::LegacyToken => "unauthorized",
            Self::StaleEvent(_) => "stale_event",
            Self::BadDeliveryId => "bad_delivery_id",
            Self::Malformed(_) => "malformed",
            Self::RedisUnavailable(_) | Self::RedisTimeout => "unavailable",
            Self::SpoolFull { .. } => "spool_full",
            Self::SpoolUnwritable(_) => "spool_unwritable",
            Self::Internal(_) => "internal",
        }
    }

    /// The response: status, JSON `{"error", "message"}`, and `Allow` for 405.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let message = match &self {
            Self::Unauthorized(_) | Self::LegacyToken => UNAUTHORIZED_MESSAGE.to_owned(),
            // Redis errors may carry addresses; the details go to the log, not the client.
            Self::RedisUnavailable(_) | Self::RedisTimeout => {
                "queue unavailable, try again later".to_owned()
            }
            Self::SpoolFull { .. } => {
                "queue unavailable and the ingress spool is full, try again later".to_owned()
            }
            Self::SpoolUnwritable(_) => {
                "queue unavailable and the ingress spool cannot be written, try again later"
                    .to_owned()
            }
            Self::Internal(_) => "internal error".to_owned(),
            // Parser messages quote the sender's text: keep answers (and logs) short.
            other => bounded(other.to_string()),
        };
        let mut response = json(
            self.status(),
            &serde_json::json!({ "error": self.code(), "message": message }),
        );
        if let Self::MethodNotAllowed { allowed } = self {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
        }
        response
    }
}

impl From<AppendError> for IngressError {
    fn from(error: AppendError) -> Self {
        match error {
            AppendError::Full { max_bytes } => Self::SpoolFull { max_bytes },
            AppendError::Unwritable(reason) => Self::SpoolUnwritable(reason),
            AppendError::Closed => Self::SpoolUnwritable("the spool is closed".into()),
        }
    }
}

/// Why the ingress could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Redis URL is unusable (an unreachable Redis is not an error at startup).
    #[error("cannot set up the queue client: {0}")]
    Queue(#[from] QueueError),
    /// The spool directory cannot be used.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// Redis may evict keys (`maxmemory-policy` is not `noeviction`).
    #[error("refusing to start: {0}")]
    EvictionPolicy(#[source] QueueError),
    /// The ops API is configured with a blank token.
    #[error("COPYDESK_OPS_LISTEN is set but COPYDESK_OPS_TOKEN is empty: set it to a long random secret")]
    OpsTokenMissing,
}
