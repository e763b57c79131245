//! The ingress's routes: one `match (method, path)`, one function per route, and the one
//! place where results become responses and `copydesk_webhooks_total` is counted.

use std::time::Duration;

use bytes::Bytes;
use copydesk::metrics::WEBHOOKS_TOTAL;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::error::IngressError;
use crate::response::json;
use crate::startup::AppState;
use crate::webhook;

/// The webhook path Chatwoot is configured to call.
pub const WEBHOOK_PATH: &str = "/webhooks/chatwoot";
/// How long `/readyz` waits for Redis to answer `PING`.
pub const READINESS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves one request on the main listener.
pub(crate) async fn handle(state: &AppState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let result = match (request.method(), request.uri().path()) {
        (&Method::POST, WEBHOOK_PATH) => return receive_webhook(state, request).await,
        (_, WEBHOOK_PATH) => Err(IngressError::MethodNotAllowed { allowed: "POST" }),
        (&Method::GET, "/livez") => Ok(livez()),
        (&Method::GET, "/readyz") => Ok(readyz(state).await),
        (&Method::GET, "/metrics") => Ok(metrics(state)),
        (_, "/livez" | "/readyz" | "/metrics") => {
            Err(IngressError::MethodNotAllowed { allowed: "GET" })
        }
        _ => Err(IngressError::NotFound),
    };
    result.unwrap_or_else(IngressError::into_response)
}

/// Serves one request on the optional metrics-only listener.
pub(crate) async fn handle_metrics_only(
    state: &AppState,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => metrics(state),
        (_, "/metrics") => IngressError::MethodNotAllowed { allowed: "GET" }.into_response(),
        _ => IngressError::NotFound.into_response(),
    }
}

async fn receive_webhook(state: &AppState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (event, result) = webhook::receive(state, request).await;
    let outcome = match &result {
        Ok(accepted) => accepted.outcome(),
        Err(error) => error.outcome(),
    };
    metrics::counter!(WEBHOOKS_TOTAL, "event" => event, "outcome" => outcome).increment(1);
    match result {
        Ok(accepted) => {
            tracing::debug!(event, outcome, "webhook accepted");
            accepted.into_response(event)
        }
        Err(error) => {
            let text = crate::error::bounded(error.to_string());
            if error.status().is_server_error() {
                tracing::warn!(event, outcome, error = %text, "webhook not accepted");
            } else {
                tracing::info!(event, outcome, error = %text, "webhook refused");
            }
            error.into_response()
        }
    }
}

fn livez() -> Response<Full<Bytes>> {
    json(StatusCode::OK, &serde_json::json!({ "status": "live" }))
}

/// Ready when webhooks can be taken: Redis answers `PING`, or it does not but the spool can
/// take them (200 `degraded`, with `redis` and `spool_events`). A spool still draining after
/// Redis came back is `degraded` too.
async fn readyz(state: &AppState) -> Response<Full<Bytes>> {
    if state.draining.is_cancelled() {
        return not_ready("shutting down");
    }
    let redis = match tokio::time::timeout(READINESS_PROBE_TIMEOUT, state.queue.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness: redis ping failed");
            Err("redis unreachable")
        }
        Err(_) => Err("redis did not answer PING in time"),
    };
    let Some(spool) = &state.spool else {
        return match redis {
            Ok(()) => json(StatusCode::OK, &serde_json::json!({ "status": "ready" })),
            Err(reason) => not_ready(reason),
        };
    };
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
        Ok(()) if spool.events == 0 => json(
            StatusCode::OK,
            &serde_json::json!({ "status": "ready", "spool_events": 0 }),
        ),
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

fn not_ready(reason: &str) -> Response<Full<Bytes>> {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({ "status": "not_ready", "reason": reason }),
    )
}

fn metrics(state: &AppState) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(state.metrics.render())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
