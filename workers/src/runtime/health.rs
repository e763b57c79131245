//! The worker's HTTP endpoints on `COPYDESK_METRICS_LISTEN`: `/livez`, `/readyz` and
//! `/metrics`, answered by the fleet's one health module ([`copydesk::health`]) so workers and
//! the ingress answer probes alike. `/readyz` adds the roles this process runs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use copydesk::health;
use copydesk::queue::QueueClient;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How long a client may take to send its request headers (the listener is internal, but a
/// stuck scraper must not hold a connection for ever).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Open connections at most; further clients wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;
/// Largest request head accepted (431 beyond).
const MAX_HEADER_BYTES: usize = 16 * 1024;

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
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            () = state.shutdown.cancelled() => return,
            slot = Arc::clone(&connections).acquire_owned() => slot,
        };
        let Ok(slot) = slot else { return };
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
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_header_size(MAX_HEADER_BYTES)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

async fn answer(state: &HealthState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(path, "/livez" | "/readyz" | "/metrics") {
        return health::not_found("/livez, /readyz or /metrics");
    }
    if request.method() != Method::GET {
        return health::get_only();
    }
    match path {
        "/livez" => health::livez(),
        "/readyz" => {
            let mut extra = serde_json::Map::new();
            extra.insert("roles".into(), serde_json::json!(state.roles));
            health::readyz(&state.queue, state.shutdown.is_cancelled(), extra).await
        }
        _ => health::metrics(&state.metrics),
    }
}
