//! The ingress's routes: one `match (method, path)` per listener, one function per route, and
//! the one place where webhook results become responses and `copydesk_webhooks_total` is
//! counted.
//!
//! - The public listener (`COPYDESK_LISTEN`) serves `/webhooks/chatwoot`, `/livez` and
//!   `/readyz` only.
//! - The metrics listener (`COPYDESK_METRICS_LISTEN`) serves `/metrics` only: approval counts,
//!   error rates, Chatwoot status codes and the spool size are not for the public.

use bytes::Bytes;
use copydesk::health;
use copydesk::metrics::WEBHOOKS_TOTAL;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tracing::Instrument as _;

use crate::error::IngressError;
use crate::response::json;
use crate::state::AppState;
use crate::webhook;

/// The webhook path Chatwoot is configured to call.
pub const WEBHOOK_PATH: &str = "/webhooks/chatwoot";
/// The legacy (unsigned) webhook paths: `/webhooks/chatwoot/{token}` ([`crate::legacy`]).
/// Logged and counted only as this route, never with the token.
pub const LEGACY_WEBHOOK_PREFIX: &str = "/webhooks/chatwoot/";
/// How long `/readyz` waits for Redis to answer `PING`.
pub const READINESS_PROBE_TIMEOUT: std::time::Duration = health::READINESS_PROBE_TIMEOUT;

/// Serves one request on the public (webhook) listener.
pub async fn handle(state: &AppState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let result = match (request.method(), request.uri().path()) {
        (&Method::POST, WEBHOOK_PATH) => return receive_webhook(state, request, None).await,
        (_, WEBHOOK_PATH) => Err(IngressError::MethodNotAllowed { allowed: "POST" }),
        (method, path) if state.legacy.is_some() && path.starts_with(LEGACY_WEBHOOK_PREFIX) => {
            if *method != Method::POST {
                Err(IngressError::MethodNotAllowed { allowed: "POST" })
            } else {
                let token = path[LEGACY_WEBHOOK_PREFIX.len()..].to_owned();
                return receive_webhook(state, request, Some(&token)).await;
            }
        }
        (&Method::GET, "/livez") => Ok(health::livez()),
        (&Method::GET, "/readyz") => Ok(readyz(state).await),
        (_, "/livez" | "/readyz") => Err(IngressError::MethodNotAllowed { allowed: "GET" }),
        _ => Err(IngressError::NotFound),
    };
    result.unwrap_or_else(IngressError::into_response)
}

/// Serves one request on the metrics listener.
pub async fn handle_metrics_only(
    state: &AppState,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => health::metrics(&state.metrics),
        (_, "/metrics") => IngressError::MethodNotAllowed { allowed: "GET" }.into_response(),
        _ => IngressError::NotFound.into_response(),
    }
}

/// Receives a webhook: signed on [`WEBHOOK_PATH`], or legacy with the URL's `token`. Logs
/// carry the route label, never the path (it holds the legacy token).
async fn receive_webhook(
    state: &AppState,
    request: Request<Incoming>,
    legacy_token: Option<&str>,
) -> Response<Full<Bytes>> {
    let route = if legacy_token.is_some() {
        "webhooks_legacy"
    } else {
        "webhooks"
    };
    // The root span of the message's trace: the jobs routed below carry its context.
    let span = tracing::info_span!(
        "webhook",
        otel.name = route,
        otel.kind = "server",
        route,
        event = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let (event, result) = match legacy_token {
        None => {
            webhook::receive(state, request)
                .instrument(span.clone())
                .await
        }
        Some(token) => {
            webhook::receive_legacy(state, request, token)
                .instrument(span.clone())
                .await
        }
    };
    let outcome = match &result {
        Ok(accepted) => accepted.outcome(),
        Err(error) => error.outcome(),
    };
    span.record("event", event).record("outcome", outcome);
    let _entered = span.enter();
    metrics::counter!(WEBHOOKS_TOTAL, "event" => event, "outcome" => outcome).increment(1);
    match result {
        Ok(accepted) => {
            tracing::debug!(route, event, outcome, "webhook accepted");
            accepted.into_response(event)
        }
        Err(error) => {
            let text = crate::error::bounded(error.to_string());
            if error.status().is_server_error() {
                tracing::warn!(route, event, outcome, error = %text, "webhook not accepted");
            } else {
                tracing::info!(route, event, outcome, error = %text, "webhook refused");
            }
            error.into_response()
        }
    }
}

/// Ready when webhooks can be taken: Redis answers `PING`, or it does not but the spool can
/// take them (200 `degraded`, with `redis` and `spool_events`). A spool still draining after
/// Redis came back is `degraded` too.
async fn readyz(state: &AppState) -> Response<Full<Bytes>> {
    let Some(spool) = &state.spool else {
        return health::readyz(
            &state.queue,
            state.draining.is_cancelled(),
            Default::default(),
        )
        .await;
    };
    if state.draining.is_cancelled() {
        return health::not_ready("shutting down");
    }
    let redis = health::probe_redis(&state.queue).await;
    let spool = spool.status();
    let degraded = |redis: &str| {
        json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "degraded", "redis": redis, "spool_events": spool.events,
            }),
        )
    };
    match redis {
        Ok(()) if spool.events == 0 => {
            let mut extra = serde_json::Map::new();
            extra.insert("spool_events".into(), 0.into());
            health::ready(extra)
        }
        Ok(()) => degraded("up"),
        Err(_) if spool.accepting => degraded("down"),
        Err(reason) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({
                "status": "not_ready",
                "reason": format!("{reason} and the spool cannot take more webhooks"),
                "redis": "down",
                "spool_events": spool.events,
            }),
        ),
    }
}
