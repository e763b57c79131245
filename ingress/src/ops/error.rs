//! [`OpsError`]: everything the ops API refuses or fails at, and the one place that maps it to a
//! status code and a JSON body `{"error": <code>, "message": <text>}` (plus `"status"` on 409).

use bytes::Bytes;
use copydesk::approvals::{ApprovalError, ApprovalStatus};
use copydesk::queue::QueueError;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::response::json;

/// Why an ops request was not served as asked.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// Missing or wrong bearer token (the same answer either way).
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// No such path, approval or dead letter; the text says which.
    #[error("{0} not found")]
    NotFound(String),
    /// The path exists, the method does not.
    #[error("method not allowed; use {allowed}")]
    MethodNotAllowed {
        /// The `Allow` header.
        allowed: &'static str,
    },
    /// The request is malformed; the text names the field or parameter.
    #[error("{0}")]
    BadRequest(String),
    /// The body is over the limit.
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The approval item is no longer pending.
    #[error("approval {id} is no longer pending (it is {})", status.as_str())]
    Conflict {
        /// The item.
        id: String,
        /// Its current status.
        status: ApprovalStatus,
    },
    /// Well-formed, but not possible for this item (e.g. approving a placeholder draft).
    #[error("{0}")]
    Unprocessable(String),
    /// Redis failed or is unreachable; details are logged, never answered.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// The decision was stored but its follow-up job could not be queued.
    #[error("decision on {id} stored, but its {queue} job could not be queued: {cause}")]
    FollowUpNotQueued {
        /// The item.
        id: String,
        /// The queue of the missing job.
        queue: &'static str,
        /// Why (logged, never answered).
        cause: String,
    },
    /// Too many open event streams.
    #[error("too many open event streams")]
    TooManyStreams,
    /// A bug or corrupt data; details are logged.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ApprovalError> for OpsError {
    fn from(error: ApprovalError) -> Self {
        match error {
            ApprovalError::Redis(e) => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<copydesk::operator::OperatorError> for OpsError {
    fn from(error: copydesk::operator::OperatorError) -> Self {
        match error {
            copydesk::operator::OperatorError::Store(e) => e.into(),
            copydesk::operator::OperatorError::FollowUpNotQueued { id, queue, cause } => {
                Self::FollowUpNotQueued { id, queue, cause }
            }
        }
    }
}

impl From<QueueError> for OpsError {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::NotFound(what) => Self::NotFound(what),
            QueueError::RedisUnavailable(e) => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<redis::RedisError> for OpsError {
    fn from(error: redis::RedisError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl OpsError {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) | Self::FollowUpNotQueued { .. } | Self::TooManyStreams => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable code.
    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::BadRequest(_) => "bad_request",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Conflict { .. } => "conflict",
            Self::Unprocessable(_) => "unprocessable",
            Self::Unavailable(_) => "unavailable",
            Self::FollowUpNotQueued { .. } => "follow_up_not_queued",
            Self::TooManyStreams => "too_many_streams",
            Self::Internal(_) => "internal",
        }
    }

    /// The response: status, JSON body, `Allow` on 405, `WWW-Authenticate` on 401.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let message = match &self {
            // Redis errors may carry addresses; the details go to the log, not the client.
            Self::Unavailable(_) => "redis unavailable, try again later".to_owned(),
            Self::FollowUpNotQueued { id, queue, .. } => format!(
                "the decision on {id} is stored, but its {queue} job could not be queued \
                 (redis unavailable); nothing will be sent until it is re-queued"
            ),
            Self::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let mut body = serde_json::json!({ "error": self.code(), "message": message });
        if let Self::Conflict { status, .. } = &self {
            body["status"] = serde_json::Value::from(status.as_str());
        }
        let mut response = json(self.status(), &body);
        match self {
            Self::MethodNotAllowed { allowed } => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allowed));
            }
            Self::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"copydesk-ops\""),
                );
            }
            _ => {}
        }
        response
    }
}
