//! The worker's HTTP endpoints on `COPYDESK_METRICS_LISTEN`: `/livez`, `/readyz` (Redis
//! answers `PING` within a second and the process is not shutting down) and `/metrics`
//! (Prometheus text).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use copydesk::queue::QueueClient;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long `/readyz` waits for Redis.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

/// What the health endpoints look at.
#[derive(Clone)]
pub struct HealthState {
    /// Redis is pinged on `/readyz`.
    pub queue: QueueClient,
    /// Rendered on `/metrics`.
    pub metrics: PrometheusHandle,
    /// Cancelled when the process is shutting down (`/readyz` turns 503).
    pub shutdown: CancellationToken,
    /// The roles this process runs (shown on `/readyz`).
    pub roles: Vec<&'static str>,
}

/// Binds `addr` (port 0 picks a free one) and returns the listener and its address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves the health endpoints until `state.shutdown` fires.
pub async fn serve(listener: TcpListener, state: HealthState) {
    loop {
        let accepted = tokio::select! {
            () = state.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&state, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(state: &HealthState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"error": "use GET"}),
        );
    }
    match request.uri().path() {
        "/livez" => json(StatusCode::OK, serde_json::json!({"status": "ok"})),
        "/readyz" => {
            if state.shutdown.is_cancelled() {
                return json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "shutting down"}),
                );
            }
            match tokio::time::timeout(READINESS_TIMEOUT, state.queue.ping()).await {
                Ok(Ok(())) => json(
                    StatusCode::OK,
                    serde_json::json!({"status": "ready", "roles": state.roles}),
                ),
                Ok(Err(error)) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "redis unavailable", "error": error.to_string()}),
                ),
                Err(_) => json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({"status": "redis did not answer within 1 s"}),
                ),
            }
        }
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(state.metrics.render())));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not found: try /livez, /readyz or /metrics"}),
        ),
    }
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
