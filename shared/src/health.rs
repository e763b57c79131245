//! The health answers every Copydesk process gives, written once: `/livez`, `/readyz` and
//! `/metrics`. The ingress (its public and metrics listeners) and the workers (their
//! `COPYDESK_METRICS_LISTEN` listener) build their responses here, so a probe reads the same
//! JSON from every process:
//!
//! - `/livez`: 200 `{"status":"live"}` while the process runs.
//! - `/readyz`: 200 `{"status":"ready", ...}` when Redis answers `PING` within
//!   [`READINESS_PROBE_TIMEOUT`] and the process is not shutting down; otherwise 503
//!   `{"status":"not_ready","reason":"..."}`. Processes add fields of their own (the
//!   workers' roles, the ingress's spool).
//! - `/metrics`: the Prometheus text format.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Map, Value};

use crate::queue::QueueClient;

/// How long `/readyz` waits for Redis to answer `PING`.
pub const READINESS_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The `Content-Type` of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A response with `value` serialised as its JSON body.
pub fn json(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `/livez`: 200 `{"status":"live"}`.
pub fn livez() -> Response<Full<Bytes>> {
    json(StatusCode::OK, &serde_json::json!({ "status": "live" }))
}

/// 200 `{"status":"ready"}` plus `extra`'s fields.
pub fn ready(extra: Map<String, Value>) -> Response<Full<Bytes>> {
    let mut body = Map::new();
    body.insert("status".into(), "ready".into());
    body.extend(extra);
    json(StatusCode::OK, &Value::Object(body))
}

/// 503 `{"status":"not_ready","reason":reason}`.
pub fn not_ready(reason: &str) -> Response<Full<Bytes>> {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({ "status": "not_ready", "reason": reason }),
    )
}

/// Why the process is not ready because of Redis, or `Ok` when it answered `PING` in time.
/// The reason is fixed text (no address, no password): it is answered to anyone.
pub async fn probe_redis(queue: &QueueClient) -> Result<(), &'static str> {
    match tokio::time::timeout(READINESS_PROBE_TIMEOUT, queue.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness: redis ping failed");
            Err("redis unreachable")
        }
        Err(_) => Err("redis did not answer PING in time"),
    }
}

/// `/readyz` for a process whose readiness is "not shutting down and Redis answers".
pub async fn readyz(
    queue: &QueueClient,
    shutting_down: bool,
    extra: Map<String, Value>,
) -> Response<Full<Bytes>> {
    if shutting_down {
        return not_ready("shutting down");
    }
    match probe_redis(queue).await {
        Ok(()) => ready(extra),
        Err(reason) => not_ready(reason),
    }
}

/// `/metrics`: the exporter's text.
pub fn metrics(handle: &PrometheusHandle) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(handle.render())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(METRICS_CONTENT_TYPE),
    );
    response
}

/// 404 naming the paths a health-only listener serves.
pub fn not_found(paths: &str) -> Response<Full<Bytes>> {
    json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({ "error": "not_found", "message": format!("no such path; try {paths}") }),
    )
}

/// 405 with `Allow: GET`.
pub fn get_only() -> Response<Full<Bytes>> {
    let mut response = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &serde_json::json!({ "error": "method_not_allowed", "message": "method not allowed; use GET" }),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}
