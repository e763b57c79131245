//! `POST /webhooks/chatwoot`: bounded read, signature check, parse, route, enqueue, answer.
//!
//! Cheap checks only: no Chatwoot calls, one Redis round trip. A 2xx is returned only once
//! the jobs are in Redis or, when Redis is unreachable and a spool is configured, fsync'd in
//! the local spool (202 `spooled`; see [`crate::spool`]). The answer is 503 only when neither
//! can take them.
//!
//! A webhook body must arrive within [`BODY_READ_TIMEOUT`] of its head (Chatwoot sends its
//! small bodies at once) and takes the body budget slice by slice as it arrives, within its
//! client address's share ([`crate::budget`]): stalled uploads from one address cannot make
//! webhooks from another wait or fail.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use copydesk::domain::DeliveryId;
use copydesk::event::{route, IgnoreReason, Route, WebhookEvent};
use copydesk::queue::{EnqueueOutcome, NewJob};
use copydesk::signature::{
    body_delivery_id, payload_account, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::budget::BodyLease;
use crate::error::IngressError;
use crate::response::json;
use crate::server::ClientAddr;
use crate::spool;
use crate::state::AppState;

/// How long a client may take to send the whole body once the head is in. Chatwoot sends a
/// webhook (a few KiB) at once; a stalled upload is answered 408 after this.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one enqueue may take without a spool: inside Chatwoot's 5 s webhook timeout, so a
/// stalled Redis gets a 503 that Chatwoot sees rather than a timeout.
pub const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one enqueue may take when a spool is configured: a Redis this slow is treated as
/// down and the webhook is spooled, well inside Chatwoot's 5 s. Later webhooks skip Redis
/// until the spool is drained, so only the first ones of an outage wait this long.
pub const SPOOL_FALLBACK_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest accepted `X-Chatwoot-Delivery` (Chatwoot sends a 36-character UUID).
pub const MAX_DELIVERY_ID_LEN: usize = DeliveryId::MAX_LEN;

/// What happened to an accepted webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Jobs were written: 202.
    Queued {
        /// How many.
        jobs: usize,
    },
    /// Redis is unreachable; the routed jobs are fsync'd in the spool and will be enqueued
    /// when it is back: 202.
    Spooled {
        /// How many.
        jobs: usize,
    },
    /// Seen before (same delivery or same event): 200, nothing written.
    Duplicate,
    /// Nothing to do: 200.
    Ignored(IgnoreReason),
}

impl Accepted {
    /// The `outcome` label of `copydesk_webhooks_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Queued { .. } => "queued",
            Self::Spooled { .. } => "spooled",
            Self::Duplicate => "duplicate",
            Self::Ignored(_) => "ignored",
        }
    }

    /// 202 or 200 with a JSON body.
    pub fn into_response(self, event: &'static str) -> Response<Full<Bytes>> {
        match self {
            Self::Queued { jobs } => json(
                StatusCode::ACCEPTED,
                &serde_json::json!({ "status": "queued", "event": event, "jobs": jobs }),
            ),
            Self::Spooled { jobs } => json(
                StatusCode::ACCEPTED,
                &serde_json::json!({ "status": "spooled", "event": event, "jobs": jobs }),
            ),
            Self::Duplicate => json(
                StatusCode::OK,
                &serde_json::json!({ "status": "duplicate", "event": event }),
            ),
            Self::Ignored(reason) => json(
                StatusCode::OK,
                &serde_json::json!({ "status": "ignored", "event": event, "reason": reason.as_str() }),
            ),
        }
    }
}

/// Handles one webhook; returns the event label (a known name or `unknown`) with the result.
pub(crate) async fn receive(
    state: &AppState,
    request: Request<Incoming>,
) -> (&'static str, Result<Accepted, IngressError>) {
    let client = ClientAddr::of(&request);
    let (parts, body) = request.into_parts();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).map(|v| v.as_bytes());
    // An oversized declared body is refused first (413), then requests whose signature
    // headers cannot pass whatever the body, before the body is read (401): only plausibly
    // signed requests get a body buffer.
    if let Err(error) = declared_size_fits(&parts.headers, state.max_body_bytes) {
        return ("unknown", Err(error));
    }
    if let Err(error) = state.verifier.precheck(
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
    ) {
        // The body is counted, never kept: an oversized one is still answered 413.
        if let Err(too_large) = drain_within(body, state.max_body_bytes).await {
            return ("unknown", Err(too_large));
        }
        return ("unknown", Err(error.into()));
    }
    // Bodies in memory are bounded as a whole and per client address, taken as bytes
    // arrive: a spent budget is 503 `busy` at once.
    let mut lease = state.body_budget.lease(client);
    let body = match read_body(body, &parts.headers, state.max_body_bytes, &mut lease).await {
        Ok(body) => body,
        Err(error) => return ("unknown", Err(error)),
    };
    let signed = state.verifier.verify(
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
    );
    if let Err(error) = signed {
        return ("unknown", Err(error.into()));
    }
    let event = match WebhookEvent::parse(&body) {
        Ok(event) => event,
        Err(error) => return ("unknown", Err(error.into())),
    };
    let label = event.label();
    let Some(delivery_id) = parts
        .headers
        .get(DELIVERY_HEADER)
        .and_then(|v| valid_delivery_id(v.as_bytes()))
    else {
        return (label, Err(IngressError::BadDeliveryId));
    };
    let received_at_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    (
        label,
        enqueue(state, &event, &delivery_id, received_at_ms).await,
    )
}

/// Handles one legacy (unsigned) webhook on `/webhooks/chatwoot/{token}` (see
/// [`crate::legacy`]): the token must be an account's legacy token (checked before the body
/// is read), the body must name that account, and the event's own time must be within the
/// window; a missing `X-Chatwoot-Delivery` is derived from the body.
pub(crate) async fn receive_legacy(
    state: &AppState,
    request: Request<Incoming>,
    token: &str,
) -> (&'static str, Result<Accepted, IngressError>) {
    let Some(legacy) = &state.legacy else {
        return ("unknown", Err(IngressError::NotFound));
    };
    let client = ClientAddr::of(&request);
    let (parts, body) = request.into_parts();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if let Err(error) = declared_size_fits(&parts.headers, state.max_body_bytes) {
        return ("unknown", Err(error));
    }
    let Some(account) = state.verifier.accounts().account_for_legacy_token(token) else {
        if let Err(too_large) = drain_within(body, state.max_body_bytes).await {
            return ("unknown", Err(too_large));
        }
        return ("unknown", Err(IngressError::LegacyToken));
    };
    let mut lease = state.body_budget.lease(client);
    let body = match read_body(body, &parts.headers, state.max_body_bytes, &mut lease).await {
        Ok(body) => body,
        Err(error) => return ("unknown", Err(error)),
    };
    if payload_account(&body) != Some(account) {
        // The token is one account's: it never vouches for another account's payload.
        return ("unknown", Err(IngressError::LegacyToken));
    }
    let event = match WebhookEvent::parse(&body) {
        Ok(event) => event,
        Err(error) => return ("unknown", Err(error.into())),
    };
    let label = event.label();
    let delivery_id = match parts.headers.get(DELIVERY_HEADER) {
        None => body_delivery_id(&body),
        Some(value) => match valid_delivery_id(value.as_bytes()) {
            Some(id) => id.to_owned(),
            None => return (label, Err(IngressError::BadDeliveryId)),
        },
    };
    let received_at_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let time = crate::legacy::event_time(&event);
    let routes_jobs = matches!(
        route(&event, &delivery_id, received_at_ms),
        Ok(Route::Enqueue { .. })
    );
    if time.is_some() || routes_jobs {
        if let Err(stale) = crate::legacy::check_window(time, now_secs, legacy.max_age) {
            return (label, Err(IngressError::StaleEvent(stale)));
        }
    }
    (
        label,
        enqueue(state, &event, &delivery_id, received_at_ms).await,
    )
}

async fn enqueue(
    state: &AppState,
    event: &WebhookEvent,
    delivery_id: &DeliveryId,
    received_at_ms: i64,
) -> Result<Accepted, IngressError> {
    let (dedupe_keys, jobs) = match route(event, delivery_id, received_at_ms) {
        Ok(Route::Enqueue { dedupe_keys, jobs }) => (dedupe_keys, jobs),
        Ok(Route::Ignore(reason)) => return Ok(Accepted::Ignored(reason)),
        Err(error) => return Err(IngressError::Internal(error.to_string())),
    };
    let Some(spool) = &state.spool else {
        let outcome = enqueue_now(state, &dedupe_keys, &jobs, ENQUEUE_TIMEOUT).await?;
        return Ok(accepted(outcome, jobs.len()));
    };
    // While the spool holds anything, new webhooks join it without trying Redis: Redis then
    // receives events in arrival order, and an outage costs no timeout per request.
    let skipped_redis = spool.is_spooling();
    if !skipped_redis {
        match enqueue_now(state, &dedupe_keys, &jobs, SPOOL_FALLBACK_TIMEOUT).await {
            Ok(outcome) => return Ok(accepted(outcome, jobs.len())),
            Err(IngressError::RedisUnavailable(error)) if !spool::redis_is_unreachable(&error) => {
                return Err(IngressError::RedisUnavailable(error));
            }
            Err(error) => {
                if spool.mark_redis_down() {
                    tracing::warn!(
                        error = %error,
                        "Redis cannot take webhooks: spooling them to disk until it is back"
                    );
                }
            }
        }
    }
    match spool.append(&dedupe_keys, &jobs).await {
        Ok(()) => Ok(Accepted::Spooled { jobs: jobs.len() }),
        // The spool cannot take it, but Redis may (it is back and the drain is catching
        // up): better out of order than lost.
        Err(error) if skipped_redis => {
            match enqueue_now(state, &dedupe_keys, &jobs, SPOOL_FALLBACK_TIMEOUT).await {
                Ok(outcome) => Ok(accepted(outcome, jobs.len())),
                Err(_) => Err(error.into()),
            }
        }
        Err(error) => Err(error.into()),
    }
}

/// One enqueue under `timeout`.
async fn enqueue_now(
    state: &AppState,
    dedupe_keys: &[String],
    jobs: &[NewJob],
    timeout: Duration,
) -> Result<EnqueueOutcome, IngressError> {
    tokio::time::timeout(timeout, state.queue.enqueue_batch(dedupe_keys, jobs))
        .await
        .map_err(|_| IngressError::RedisTimeout)?
        .map_err(IngressError::RedisUnavailable)
}

fn accepted(outcome: EnqueueOutcome, jobs: usize) -> Accepted {
    match outcome {
        EnqueueOutcome::Queued => Accepted::Queued { jobs },
        EnqueueOutcome::Duplicate => Accepted::Duplicate,
    }
}

/// Reads at most `limit` bytes within [`BODY_READ_TIMEOUT`], covering what arrived with
/// `lease`: a declared `Content-Length` over the limit is refused before reading anything,
/// and chunked bodies are counted as they stream, so a huge upload is never buffered.
async fn read_body(
    mut body: Incoming,
    headers: &http::HeaderMap,
    limit: usize,
    lease: &mut BodyLease,
) -> Result<Bytes, IngressError> {
    declared_size_fits(headers, limit)?;
    let read = async {
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| IngressError::BodyUnreadable(error.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len());
            if seen > limit {
                return Err(IngressError::PayloadTooLarge { limit });
            }
            lease.cover(seen).map_err(|_| IngressError::Busy)?;
            chunks.push(data);
        }
        Ok(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.swap_remove(0),
            _ => {
                let mut joined = Vec::with_capacity(seen);
                for chunk in &chunks {
                    joined.extend_from_slice(chunk);
                }
                Bytes::from(joined)
            }
        })
    };
    tokio::time::timeout(BODY_READ_TIMEOUT, read)
        .await
        .map_err(|_| IngressError::BodyTimeout)?
}

/// Reads and drops a body, counting it: `PayloadTooLarge` as soon as it passes `limit`;
/// a body that stalls or breaks is simply given up on (the caller answers for the request).
async fn drain_within(mut body: Incoming, limit: usize) -> Result<(), IngressError> {
    let count = async {
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return Ok(()) };
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.len());
                if seen > limit {
                    return Err(IngressError::PayloadTooLarge { limit });
                }
            }
        }
        Ok(())
    };
    tokio::time::timeout(BODY_READ_TIMEOUT, count)
        .await
        .unwrap_or(Ok(()))
}

/// The `Content-Length`, when declared and numeric.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// A declared `Content-Length` over `limit` is refused without reading anything.
fn declared_size_fits(headers: &http::HeaderMap, limit: usize) -> Result<(), IngressError> {
    if declared_length(headers).is_some_and(|len| len > limit as u64) {
        return Err(IngressError::PayloadTooLarge { limit });
    }
    Ok(())
}

/// A delivery id becomes part of a Redis key: accept only what [`DeliveryId`] parses (at most
/// [`MAX_DELIVERY_ID_LEN`] bytes of visible ASCII).
fn valid_delivery_id(raw: &[u8]) -> Option<DeliveryId> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_bounded_visible_ascii() {
        assert_eq!(
            valid_delivery_id(b"3f1c2a9e-6b7d")
                .as_ref()
                .map(DeliveryId::as_str),
            Some("3f1c2a9e-6b7d")
        );
        assert_eq!(valid_delivery_id(b""), None);
        assert_eq!(valid_delivery_id(b"a b"), None);
        assert_eq!(valid_delivery_id(&[b'a'; MAX_DELIVERY_ID_LEN + 1]), None);
    }
}
