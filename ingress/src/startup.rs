//! Wiring: [`Application::build`] binds the listeners and connects the queue;
//! [`Application::run_until_stopped`] serves until the shutdown token is cancelled, drains
//! in-flight requests, then drains the spool into Redis while Redis is reachable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use copydesk::queue::QueueClient;
use copydesk::signature::SignatureVerifier;
use hyper_util::server::graceful::GracefulShutdown;
use tokio_util::sync::CancellationToken;

use crate::budget::BodyBudget;
use crate::config::IngressConfig;
use crate::error::StartupError;
use crate::routes;
use crate::server::{self, Listener};
use crate::spool::Spool;
use crate::state::AppState;

/// How long, after the requests are done, the spool may take to drain into Redis before the
/// process exits (what is left stays on disk for the next start). With the default
/// `COPYDESK_SHUTDOWN_TIMEOUT_SECS` of 10 s this ends inside Kubernetes' grace period
/// (`terminationGracePeriodSeconds: 40` in `deploy/k8s/ingress.yaml`).
pub const SPOOL_EXIT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

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
    listener: Listener,
    metrics_listener: Option<Listener>,
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
        let listener = Listener::bind("webhooks", config.listen).await?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(Listener::bind("metrics", addr).await?),
            None => None,
        };
        let queue = QueueClient::build(&config.redis)
            .await?
            .with_burst(config.burst);
        copydesk::queue::enforce_eviction_policy(&queue, config.allow_eviction)
            .await
            .map_err(StartupError::EvictionPolicy)?;
        // The recorder first: the spool publishes its gauges when it opens.
        let metrics = copydesk::metrics::install();
        copydesk::metrics::zero_webhook_counters(
            copydesk::event::EventKind::ALL.map(copydesk::event::EventKind::as_str),
        );
        let spool = config.spool.as_ref().map(Spool::build).transpose()?;
        let state = AppState {
            queue,
            spool,
            verifier: SignatureVerifier::with_accounts(
                config.accounts.with_unbound_secrets(config.webhook_secrets),
                config.signature_tolerance,
            ),
            legacy: config.legacy,
            max_body_bytes: config.max_body_bytes,
            body_budget: BodyBudget::default(),
            metrics,
            draining: CancellationToken::new(),
        };
        let ops = match config.ops {
            Some(ops) => Some(
                crate::ops::OpsServer::build(
                    ops,
                    &state.queue,
                    state.spool.clone(),
                    state.draining.clone(),
                )
                .await?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            metrics_listener,
            ops,
            state: Arc::new(state),
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// The metrics listener's address, if one was configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().map(Listener::addr)
    }

    /// The ops API's address, if `COPYDESK_OPS_LISTEN` was configured.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops.as_ref().map(crate::ops::OpsServer::addr)
    }

    /// Serves until `shutdown` is cancelled, then: `/readyz` turns 503, the listeners close,
    /// in-flight requests finish (keep-alive connections are closed after their current
    /// request) or the shutdown deadline passes; then, if Redis answers, what the spool holds
    /// is drained into it (for at most [`SPOOL_EXIT_DRAIN_TIMEOUT`]) before it returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> ShutdownOutcome {
        let draining = self.state.draining.clone();
        tokio::spawn({
            let draining = draining.clone();
            async move {
                shutdown.cancelled().await;
                draining.cancel();
            }
        });
        let drain_stop = CancellationToken::new();
        let drainer =
            self.state.spool.clone().map(|spool| {
                tokio::spawn(spool.drain(self.state.queue.clone(), drain_stop.clone()))
            });
        let graceful = GracefulShutdown::new();
        let state = Arc::clone(&self.state);
        let main_handler = move |request| {
            let state = Arc::clone(&state);
            async move { routes::handle(&state, request).await }
        };
        let main_loop = server::serve(self.listener, main_handler, &graceful, draining.clone());
        let state = Arc::clone(&self.state);
        let metrics_loop = async {
            if let Some(listener) = self.metrics_listener {
                let handler = move |request| {
                    let state = Arc::clone(&state);
                    async move { routes::handle_metrics_only(&state, request).await }
                };
                server::serve(listener, handler, &graceful, draining.clone()).await;
            }
        };
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
        drain_stop.cancel();
        if let Some(drainer) = drainer {
            let _ = drainer.await;
        }
        if let Some(spool) = &self.state.spool {
            spool
                .drain_before_exit(&self.state.queue, SPOOL_EXIT_DRAIN_TIMEOUT)
                .await;
        }
        outcome
    }
}
