//! `copydesk-reconciler`: finds what Chatwoot's webhooks never delivered and feeds it into the
//! pipeline. Chatwoot sends an account webhook once (a timeout, a 5xx or a refused connection
//! loses it), so every minute the ingress is down, customers would silently get no draft.
//!
//! Every `COPYDESK_RECONCILE_INTERVAL_MS` one pass (one at a time across replicas: a Redis
//! lock with a token, renewed after every conversation) reads, per configured account, the
//! conversations active since the account's watermark and their messages since then, and
//! routes what it finds like a webhook ([`scan`]): same jobs, same cause keys, so what did
//! arrive is a duplicate and a webhook arriving after the sweep is one too. The watermark
//! moves to the pass's start only when every page was read and every job enqueued.
//!
//! Cost per account and pass: `ceil(A / 25) + 1` conversation-list calls plus, per active
//! conversation, `ceil(M / 20)` message-list calls (at least 1), where `A` is the number of
//! conversations with activity since the watermark and `M` their messages since then. A quiet
//! pass makes one call per account.

pub mod config;
pub mod scan;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use copydesk::approvals::ApprovalStore;
use copydesk::chatwoot::ChatwootAccounts;
use copydesk::domain::now_ms;
use copydesk::metrics::{
    RECONCILE_CONVERSATIONS_SCANNED_TOTAL, RECONCILE_MISSED_TOTAL, RECONCILE_PASSES_TOTAL,
    RECONCILE_RECOVERED_TOTAL, RECONCILE_WATERMARK_LAG_SECONDS,
};
use copydesk::queue::QueueClient;
use copydesk::reconcile::{AccountPass, PassReport, ReconcileStore};
use rand::Rng;
use tokio_util::sync::CancellationToken;

pub use config::ReconcileConfig;
pub use scan::Finding;

use crate::jobs::lifecycle_store::LifecycleStore;
use scan::AccountScan;

/// How a pass is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassRequest {
    /// Scan from here (Unix ms) instead of each account's watermark (`--since`).
    pub since_ms: Option<i64>,
    /// Enqueue and record nothing (`--dry-run`).
    pub dry_run: bool,
}

/// A finished pass: its report (also stored in Redis unless a dry run) and what it found.
#[derive(Debug, Clone)]
pub struct PassOutcome {
    /// Counts per account.
    pub report: PassReport,
    /// One line per event found.
    pub findings: Vec<Finding>,
}

/// The sweep.
#[derive(Debug, Clone)]
pub struct Reconciler {
    queue: QueueClient,
    store: ReconcileStore,
    lifecycle: LifecycleStore,
    approvals: ApprovalStore,
    chatwoot: Arc<ChatwootAccounts>,
    config: ReconcileConfig,
}

impl Reconciler {
    /// A sweep over `chatwoot`'s accounts (those `config` covers).
    pub fn new(
        queue: QueueClient,
        chatwoot: Arc<ChatwootAccounts>,
        config: ReconcileConfig,
    ) -> Self {
        Self {
            store: ReconcileStore::for_queue(&queue),
            lifecycle: LifecycleStore::new(queue.connection(), queue.keys().clone()),
            approvals: ApprovalStore::for_queue(&queue),
            queue,
            chatwoot,
            config,
        }
    }

    /// Runs a pass every interval until `shutdown` (the first after one interval, so webhooks
    /// of a fleet starting together are in first).
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            interval_ms = self.config.interval.as_millis() as u64,
            window_secs = self.config.window.as_secs(),
            "reconciliation sweep running"
        );
        publish_zero_counters();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.config.interval) => {}
            }
            match self.pass(PassRequest::default()).await {
                Ok(Some(outcome)) => log_pass(&outcome.report),
                Ok(None) => {}
                Err(error) => {
                    metrics::counter!(RECONCILE_PASSES_TOTAL, "outcome" => "failed").increment(1);
                    tracing::warn!(error = %error, "reconciliation pass failed");
                }
            }
        }
    }

    /// One pass over every covered account; `None` when another replica's pass holds the lock.
    pub async fn pass(&self, request: PassRequest) -> anyhow::Result<Option<PassOutcome>> {
        let token = format!("{:016x}", rand::rng().random::<u64>());
        let ttl = self.lock_ttl();
        if !self.store.try_lock(&token, ttl).await? {
            metrics::counter!(RECONCILE_PASSES_TOTAL, "outcome" => "skipped").increment(1);
            tracing::debug!("another reconciliation pass is running");
            return Ok(None);
        }
        let result = self.pass_locked(request, &token, ttl).await;
        if let Err(error) = self.store.release_lock(&token).await {
            tracing::warn!(error = %error, "could not release the reconciliation lock (it expires)");
        }
        result.map(Some)
    }

    fn lock_ttl(&self) -> Duration {
        (self.config.interval * 2).max(Duration::from_secs(60))
    }

    async fn pass_locked(
        &self,
        request: PassRequest,
        token: &str,
        ttl: Duration,
    ) -> anyhow::Result<PassOutcome> {
        let started_at_ms = now_ms();
        let mut report = PassReport {
            started_at_ms,
            dry_run: request.dry_run,
            ..PassReport::default()
        };
        let mut findings = Vec::new();
        let window_start = started_at_ms - self.config.window.as_millis() as i64;
        for account in self.chatwoot.account_ids() {
            if !self.config.covers(account) {
                continue;
            }
            let client = self.chatwoot.client(account)?;
            let watermark = self.store.watermark(account).await?;
            let since_ms = match (request.since_ms, watermark) {
                (Some(since), _) => since,
                (None, Some(mark)) => mark - self.config.overlap.as_millis() as i64,
                (None, None) => window_start,
            };
            let scan = AccountScan {
                client,
                queue: &self.queue,
                store: &self.store,
                lifecycle: &self.lifecycle,
                approvals: &self.approvals,
                config: &self.config,
                dry_run: request.dry_run,
                now_ms: started_at_ms,
                since_ms,
                calls: AtomicU64::new(0),
            };
            let mut pass = AccountPass {
                account_id: account,
                since_ms,
                ..AccountPass::default()
            };
            let keep_lock = || async { self.store.renew_lock(token, ttl).await.unwrap_or(false) };
            if let Err(error) = scan.run(&mut pass, &mut findings, keep_lock).await {
                pass.complete = false;
                pass.error = Some(error.to_string());
            }
            pass.api_calls = scan.calls.load(Ordering::Relaxed);
            // A manual pass from later than the watermark did not cover the gap before it.
            let covers_gap = watermark.is_none_or(|mark| since_ms <= mark);
            if pass.complete && !request.dry_run && covers_gap {
                self.store.advance_watermark(account, started_at_ms).await?;
            }
            report.accounts.push(pass);
        }
        report.finished_at_ms = now_ms();
        if !request.dry_run {
            self.store.record_pass(&report).await?;
            self.export(&report).await;
        }
        Ok(PassOutcome { report, findings })
    }

    async fn export(&self, report: &PassReport) {
        let outcome = if report.accounts.iter().all(|a| a.complete) {
            "complete"
        } else {
            "partial"
        };
        metrics::counter!(RECONCILE_PASSES_TOTAL, "outcome" => outcome).increment(1);
        for account in &report.accounts {
            metrics::counter!(RECONCILE_CONVERSATIONS_SCANNED_TOTAL)
                .increment(account.conversations_scanned);
            metrics::counter!(RECONCILE_MISSED_TOTAL).increment(account.missed);
        }
        for (kind, n) in report.recovered() {
            metrics::counter!(RECONCILE_RECOVERED_TOTAL, "kind" => kind).increment(n);
        }
        let mut oldest: Option<i64> = None;
        for account in &report.accounts {
            if let Ok(Some(mark)) = self.store.watermark(account.account_id).await {
                oldest = Some(oldest.map_or(mark, |o: i64| o.min(mark)));
            }
        }
        if let Some(mark) = oldest {
            let lag = (now_ms() - mark).max(0) as f64 / 1000.0;
            metrics::gauge!(RECONCILE_WATERMARK_LAG_SECONDS).set(lag);
        }
    }
}

/// Every counter of the sweep at 0 before its first pass: Prometheus's `increase()` sees no
/// increase in a series whose first sample is already 5, so without this the first lost
/// webhooks a fresh reconciler recovers would never trip `CopydeskWebhooksLost`.
fn publish_zero_counters() {
    for outcome in ["complete", "partial", "failed", "skipped"] {
        metrics::counter!(RECONCILE_PASSES_TOTAL, "outcome" => outcome).increment(0);
    }
    for kind in scan::RECOVERED_KINDS {
        metrics::counter!(RECONCILE_RECOVERED_TOTAL, "kind" => kind).increment(0);
    }
    metrics::counter!(RECONCILE_CONVERSATIONS_SCANNED_TOTAL).increment(0);
    metrics::counter!(RECONCILE_MISSED_TOTAL).increment(0);
}

fn log_pass(report: &PassReport) {
    let recovered: u64 = report.recovered().values().sum();
    let missed: u64 = report.accounts.iter().map(|a| a.missed).sum();
    for account in report.accounts.iter().filter(|a| a.error.is_some()) {
        tracing::warn!(
            account = account.account_id,
            error = account.error.as_deref().unwrap_or(""),
            "reconciliation pass incomplete: the watermark stays"
        );
    }
    if recovered > 0 || missed > 0 {
        tracing::warn!(
            recovered,
            missed,
            "reconciliation found events no webhook delivered (webhooks are being lost)"
        );
    } else {
        tracing::debug!("reconciliation pass found nothing missing");
    }
}
