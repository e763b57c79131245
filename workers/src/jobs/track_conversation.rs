//! `track_conversation` (`copydesk-lifecycle`): conversation state, FRT/TTR/SLA metrics,
//! auto-close.
//!
//! Each job is one conversation event (created, updated, status changed, customer message,
//! public agent reply, CSAT answer; see `copydesk::event::route`). The stage applies it to
//! the conversation's [`ConversationState`](crate::lifecycle::ConversationState) with
//! compare-and-set in Redis ([`super::lifecycle_store`]), so two workers on one conversation
//! never lose an update, then records the step's metrics
//! ([`LifecycleEffect::record_metrics`]) and keeps the assigner's workload true: a resolved
//! or closed conversation no longer counts for its agent (and leaves the waiting list), a
//! reopened one counts again, a reassignment seen in Chatwoot moves it.
//!
//! Next to the queue worker, [`Handler::run_background`] runs the scheduled sweep
//! every `COPYDESK_SWEEP_INTERVAL_MS` (default 60 s) over the tracked conversations that are
//! due: SLA targets missed while nobody answered are counted, and conversations resolved for
//! `COPYDESK_AUTO_CLOSE_AFTER_SECS` are closed, once, and leave the index. A sweep is
//! idempotent: running it twice, or on two replicas at once, closes nothing twice.
//!
//! Metrics are recorded after the state is stored: a crash in between loses those samples
//! rather than counting them twice on the replay (which the stored state recognises).

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use copydesk::config::{millis_or, ConfigError, EnvSource};
use copydesk::domain::now_ms;
use copydesk::jobs::TrackConversation;
use copydesk::queue::{JobAttempt, JobError};
use tokio_util::sync::CancellationToken;

use super::kind::{Background, JobHandler, Kind, Role, Setup};
use super::lifecycle_store::{LifecycleStore, StoreError, Tracked, Update};
use super::Deps;
use crate::lifecycle::{LifecycleEffect, LifecyclePolicy, Status};
use crate::routing::waiting_list::WaitingList;
use crate::routing::RoutingStore;

/// The variable holding the sweep interval in milliseconds.
pub const SWEEP_INTERVAL_VAR: &str = "COPYDESK_SWEEP_INTERVAL_MS";

/// Default sweep interval.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Due conversations read per index query.
pub const SWEEP_BATCH: usize = 200;

/// Index queries per sweep at most, so one pass is bounded (the rest waits for the next).
const MAX_SWEEP_BATCHES: usize = 50;

/// `COPYDESK_SWEEP_INTERVAL_MS` (default 60 s; at least 1 ms).
pub fn sweep_interval_from_env(env: &dyn EnvSource) -> Result<Duration, ConfigError> {
    let interval = millis_or(env, SWEEP_INTERVAL_VAR, DEFAULT_SWEEP_INTERVAL)?;
    if interval.is_zero() {
        return Err(ConfigError::Invalid {
            var: SWEEP_INTERVAL_VAR,
            value: "0".into(),
            reason: "must be at least 1 millisecond".into(),
        });
    }
    Ok(interval)
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Due conversations looked at.
    pub visited: usize,
    /// Conversations closed.
    pub closed: usize,
    /// SLA breaches counted.
    pub breaches: usize,
}

impl Kind for TrackConversation {
    const ROLE: Role = Role::LIFECYCLE;
    type Handler = Handler;
    fn handler(setup: &Setup<'_>) -> anyhow::Result<Handler> {
        let table = setup.routing()?;
        let policy = LifecyclePolicy::from_env(setup.env, *table.sla())?;
        let interval = sweep_interval_from_env(setup.env)?;
        Ok(Handler::new(setup.deps.clone(), Arc::new(policy)).with_sweep_interval(interval))
    }
}

impl JobHandler for Handler {
    type Job = TrackConversation;
    async fn run_job(&self, job: TrackConversation, attempt: JobAttempt) -> Result<(), JobError> {
        self.handle(job, attempt).await
    }
    fn background(&self, shutdown: CancellationToken) -> Option<Background> {
        Some(Box::pin(self.clone().run_background(shutdown)))
    }
}

/// The `track_conversation` handler.
#[derive(Clone, Debug)]
pub struct Handler {
    deps: Deps,
    policy: Arc<LifecyclePolicy>,
    store: LifecycleStore,
    workload: RoutingStore,
    waiting: WaitingList,
    sweep_interval: Duration,
}

impl Handler {
    /// A stage applying `policy`.
    pub fn new(deps: Deps, policy: Arc<LifecyclePolicy>) -> Self {
        let conn = deps.queue.connection();
        let keys = deps.queue.keys().clone();
        Self {
            store: LifecycleStore::new(conn.clone(), keys.clone())
                .with_closed_ttl(deps.queue.retention()),
            workload: RoutingStore::new(conn.clone(), keys.clone()),
            waiting: WaitingList::new(conn, keys),
            deps,
            policy,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
        }
    }

    /// The same handler sweeping every `interval` (instead of [`DEFAULT_SWEEP_INTERVAL`];
    /// the role reads `COPYDESK_SWEEP_INTERVAL_MS` at start).
    pub fn with_sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// The conversation states.
    pub fn store(&self) -> &LifecycleStore {
        &self.store
    }

    /// Background work next to the queue worker: the sweep, until `shutdown` fires. On start
    /// the index is re-scored if the policy changed since the last run.
    pub async fn run_background(self, shutdown: CancellationToken) {
        let interval = self.sweep_interval;
        if let Err(error) = self.rescore_if_policy_changed().await {
            tracing::warn!(%error, "could not re-score the lifecycle index; continuing");
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match self.sweep(now_ms()).await {
                Ok(report) if report.closed + report.breaches > 0 => {
                    tracing::info!(
                        visited = report.visited,
                        closed = report.closed,
                        breaches = report.breaches,
                        "lifecycle sweep"
                    );
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "lifecycle sweep failed; the next one retries")
                }
            }
        }
    }

    /// Handles one attempt.
    pub async fn handle(
        &self,
        job: TrackConversation,
        _attempt: JobAttempt,
    ) -> Result<(), JobError> {
        self.apply(&job).await.map(|_| ())
    }

    /// Applies one event to the conversation's stored state, records its metrics and keeps
    /// the workload records in step; returns what the step did.
    pub async fn apply(&self, job: &TrackConversation) -> Result<Update, JobError> {
        let now = now_ms();
        let policy = *self.policy;
        let (account_id, conversation_id) = (job.account_id.get(), job.conversation_id.get());
        let update = self
            .store
            .update(account_id, conversation_id, &policy, |state| {
                state.apply_job(job, now, &policy)
            })
            .await
            .map_err(store_failure)?;
        record(account_id, conversation_id, &update.effects);
        self.sync_workload(account_id, conversation_id, &update)
            .await?;
        Ok(update)
    }

    /// The sweep at `now_ms`: every tracked conversation whose next due time has come is
    /// swept (SLA breaches of unanswered episodes, auto-close of long-resolved ones), then
    /// filed under its next due time or, once closed, dropped from the index.
    pub async fn sweep(&self, now_ms: i64) -> Result<SweepReport, StoreError> {
        let policy = *self.policy;
        let mut report = SweepReport::default();
        for _ in 0..MAX_SWEEP_BATCHES {
            let due = self.store.due(now_ms, SWEEP_BATCH).await?;
            let batch = due.len();
            for tracked in due {
                report.visited += 1;
                let update = match self.sweep_one(tracked, now_ms, &policy).await {
                    Ok(update) => update,
                    Err(StoreError::Redis(error)) => return Err(StoreError::Redis(error)),
                    Err(error) => {
                        tracing::error!(%error, "conversation skipped by the sweep");
                        continue;
                    }
                };
                record(tracked.account_id, tracked.conversation_id, &update.effects);
                for effect in &update.effects {
                    match effect {
                        LifecycleEffect::Closed => report.closed += 1,
                        LifecycleEffect::SlaBreach { .. } => report.breaches += 1,
                        _ => {}
                    }
                }
                if let Err(error) = self
                    .sync_workload(tracked.account_id, tracked.conversation_id, &update)
                    .await
                {
                    tracing::warn!(%error, conversation = tracked.conversation_id,
                        "workload not updated after the sweep");
                }
            }
            if batch < SWEEP_BATCH {
                break;
            }
        }
        Ok(report)
    }

    /// Sweeps one conversation; when nothing changed (a stale score, or a state that is
    /// gone), files it again under its current next due time so it is not met again at once.
    async fn sweep_one(
        &self,
        tracked: Tracked,
        now_ms: i64,
        policy: &LifecyclePolicy,
    ) -> Result<Update, StoreError> {
        let update = self
            .store
            .update(
                tracked.account_id,
                tracked.conversation_id,
                policy,
                |state| state.sweep(now_ms, policy),
            )
            .await?;
        if update.effects.is_empty() && update.before == update.after {
            self.store
                .rescore(tracked, update.version, &update.after, policy)
                .await?;
        }
        Ok(update)
    }

    /// Re-scores the whole index when the SLA targets or the auto-close delay differ from
    /// the ones the scores were computed with (recorded at `lifecycle:policy`).
    async fn rescore_if_policy_changed(&self) -> Result<(), StoreError> {
        let fingerprint = format!("{:?}", *self.policy);
        let key = self.deps.queue.keys().lifecycle_policy();
        let mut conn = self.deps.queue.connection();
        let previous: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&fingerprint)
            .arg("GET")
            .query_async(&mut conn)
            .await?;
        if previous.as_deref() != Some(fingerprint.as_str()) {
            let n = self.store.rescore_all(&self.policy).await?;
            tracing::info!(tracked = n, "lifecycle policy changed: index re-scored");
        }
        Ok(())
    }

    /// Keeps the assigner's workload and waiting list in step with the state: resolved or
    /// closed → released; reopened, or reassigned in Chatwoot → counted for the assignee.
    async fn sync_workload(
        &self,
        account_id: i64,
        conversation_id: i64,
        update: &Update,
    ) -> Result<(), JobError> {
        let after = &update.after;
        if after.is_closed() || after.status == Status::Resolved {
            // Checked on every event, not only the resolving one, so a replay after a crash
            // between storing the state and this step still releases it.
            self.workload
                .release(account_id, conversation_id)
                .await
                .map_err(redis_failure)?;
            self.waiting
                .remove(account_id, conversation_id)
                .await
                .map_err(|e| JobError::Retryable(e.into()))?;
            return Ok(());
        }
        let reopened = update
            .effects
            .iter()
            .any(|e| matches!(e, LifecycleEffect::Reopened { .. }));
        let reassigned = after.assignee_id != update.before.assignee_id;
        if reopened || reassigned {
            self.workload
                .set_owner(account_id, conversation_id, after.assignee_id)
                .await
                .map_err(redis_failure)?;
        }
        Ok(())
    }
}

/// Records the effects' metrics and logs the notable ones.
fn record(account_id: i64, conversation_id: i64, effects: &[LifecycleEffect]) {
    for effect in effects {
        effect.record_metrics();
        match effect {
            LifecycleEffect::SlaBreach { priority, kind } => tracing::info!(
                account = account_id,
                conversation = conversation_id,
                priority = priority.as_str(),
                kind = kind.as_str(),
                "SLA target missed"
            ),
            LifecycleEffect::Closed => tracing::info!(
                account = account_id,
                conversation = conversation_id,
                "conversation closed (resolved long enough)"
            ),
            LifecycleEffect::Reopened { reopen_count } => tracing::info!(
                account = account_id,
                conversation = conversation_id,
                reopen_count,
                "conversation reopened by the customer"
            ),
            _ => tracing::debug!(?effect, "lifecycle effect"),
        }
    }
}

fn store_failure(error: StoreError) -> JobError {
    match error {
        StoreError::Corrupt { .. } => JobError::Permanent(anyhow!(error)),
        StoreError::Redis(_) | StoreError::Contended { .. } => JobError::Retryable(anyhow!(error)),
    }
}

fn redis_failure(error: redis::RedisError) -> JobError {
    JobError::Retryable(anyhow::Error::new(error).context("workload records in Redis"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_interval_comes_from_the_environment() {
        let mut env = std::collections::HashMap::new();
        assert_eq!(
            sweep_interval_from_env(&env).expect("default"),
            DEFAULT_SWEEP_INTERVAL
        );
        env.insert(SWEEP_INTERVAL_VAR.to_owned(), "500".to_owned());
        assert_eq!(
            sweep_interval_from_env(&env).expect("set"),
            Duration::from_millis(500)
        );
        env.insert(SWEEP_INTERVAL_VAR.to_owned(), "soon".to_owned());
        assert!(sweep_interval_from_env(&env).is_err());
    }
}
