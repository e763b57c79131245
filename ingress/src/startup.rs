//! Wiring: [`Application::build`] binds the listeners and connects the queue;
//! [`Application::run_until_stopped`] serves until the shutdown token is cancelled, then
//! drains in-flight requests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use copydesk::queue::{QueueClient, QueueError};
use copydesk::signature::SignatureVerifier;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::IngressConfig;
use crate::routes;
use crate::spool::{Spool, SpoolError};

/// How long a client may take to send request headers (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// Open connections per listener at most; further clients wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Memory all webhook bodies being read at once may take, in KiB (64 MiB): a body takes its
/// declared length (or the body limit when undeclared) from it while it is read and handled.
pub const BODY_BUDGET_KIB: usize = 64 * 1024;

/// What the request handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) queue: QueueClient,
    pub(crate) verifier: SignatureVerifier,
    pub(crate) max_body_bytes: usize,
    pub(crate) metrics: PrometheusHandle,
    /// Cancelled first on shutdown, so `/readyz` answers 503 while requests drain.
    pub(crate) draining: CancellationToken,
    /// The disk spool used while Redis is unreachable (issue 5), if `COPYDESK_SPOOL_DIR` is set.
    pub(crate) spool: Option<Spool>,
    /// KiB permits for request bodies in memory ([`BODY_BUDGET_KIB`]).
    pub(crate) body_budget: Arc<tokio::sync::Semaphore>,
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

/// How [`Application::run_until_stopped`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every in-flight request finished.
    Drained,
    /// The shutdown deadline passed with requests still open; they were dropped.
    DeadlineExceeded,
}

/// The ingress, bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    metrics_listener: Option<(TcpListener, SocketAddr)>,
    // ops API (see crate::ops): bound only when COPYDESK_OPS_LISTEN is set.
    ops: Option<crate::ops::OpsServer>,
    state: Arc<AppState>,
    shutdown_timeout: Duration,
}

impl Application {
    /// Binds `config.listen` (port 0 picks a free port; see [`Application::addr`]) and the
    /// optional metrics listener, installs the metrics recorder and builds the queue client.
    /// Starts even when Redis is down: `/readyz` says so until it is back.
    pub async fn build(config: IngressConfig) -> Result<Self, StartupError> {
        let (listener, addr) = bind(config.listen).await?;
        let metrics_listener = match config.metrics_listen {
            Some(metrics_addr) => Some(bind(metrics_addr).await?),
            None => None,
        };
        // --- spool and Redis policy (issue 5) ---
        let queue = QueueClient::build(&config.redis).await?;
        copydesk::queue::enforce_eviction_policy(&queue, config.allow_eviction)
            .await
            .map_err(StartupError::EvictionPolicy)?;
        let spool = config.spool.as_ref().map(Spool::build).transpose()?;
        // --- end spool ---
        let state = AppState {
            queue,
            spool,
            verifier: SignatureVerifier::new(config.webhook_secrets, config.signature_tolerance),
            max_body_bytes: config.max_body_bytes,
            body_budget: Arc::new(tokio::sync::Semaphore::new(BODY_BUDGET_KIB)),
            metrics: copydesk::metrics::install(),
            draining: CancellationToken::new(),
        };
        // ops API (see crate::ops)
        let ops = match config.ops {
            Some(ops) => {
                Some(crate::ops::OpsServer::build(ops, &state.queue, state.draining.clone()).await?)
            }
            None => None,
        };
        Ok(Self {
            listener,
            addr,
            metrics_listener,
            ops,
            state: Arc::new(state),
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics listener's address, if one was configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(|(_, addr)| *addr)
    }

    /// The ops API's address, if `COPYDESK_OPS_LISTEN` was configured.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().map(crate::ops::OpsServer::addr)
    }

    /// Serves until `shutdown` is cancelled, then: `/readyz` turns 503, the listeners close,
    /// in-flight requests finish (keep-alive connections are closed after their current
    /// request), and it returns once they are done or the shutdown deadline has passed.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> ShutdownOutcome {
        tracing::info!(addr = %self.addr, "ingress listening");
        let draining = self.state.draining.clone();
        tokio::spawn({
            let draining = draining.clone();
            async move {
                shutdown.cancelled().await;
                draining.cancel();
            }
        });
        // --- spool drain (issue 5): runs until in-flight requests are done, then stops ---
        let drain_stop = CancellationToken::new();
        let drainer =
            self.state.spool.clone().map(|spool| {
                tokio::spawn(spool.drain(self.state.queue.clone(), drain_stop.clone()))
            });
        // --- end spool ---
        let graceful = GracefulShutdown::new();
        let state = Arc::clone(&self.state);
        let main_handler = move |request| {
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(routes::handle(&state, request).await) }
        };
        let main_loop = accept_loop(self.listener, main_handler, &graceful, draining.clone());
        let state = Arc::clone(&self.state);
        let metrics_loop = async {
            if let Some((listener, addr)) = self.metrics_listener {
                tracing::info!(%addr, "metrics listening");
                let metrics_handler = move |request| {
                    let state = Arc::clone(&state);
                    async move {
                        Ok::<_, Infallible>(routes::handle_metrics_only(&state, request).await)
                    }
                };
                accept_loop(listener, metrics_handler, &graceful, draining.clone()).await;
            }
        };
        // ops API (see crate::ops)
        let ops_loop = async {
            if let Some(ops) = self.ops {
                ops.serve(&graceful, draining.clone()).await;
            }
        };
        tokio::join!(main_loop, metrics_loop, ops_loop);
        tracing::info!(
            "shutting down: readiness off, listeners closed, draining in-flight requests"
        );
        let outcome = tokio::select! {
            () = graceful.shutdown() => {
                tracing::info!("all requests finished");
                ShutdownOutcome::Drained
            }
            () = tokio::time::sleep(self.shutdown_timeout) => {
                tracing::warn!(timeout = ?self.shutdown_timeout, "shutdown deadline passed with requests in flight");
                ShutdownOutcome::DeadlineExceeded
            }
        };
        // --- spool drain (issue 5): what is left stays on disk for the next start ---
        drain_stop.cancel();
        if let Some(drainer) = drainer {
            let _ = drainer.await;
        }
        outcome
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// Accepts connections until `stop` (readiness off) is cancelled; each connection is watched by `graceful`
/// so shutdown can let it finish its current request. Dropping the listener on return
/// refuses new connections.
async fn accept_loop<H, F>(
    listener: TcpListener,
    handler: H,
    graceful: &GracefulShutdown,
    stop: CancellationToken,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = connections.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, _peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service_fn(handler.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
}
