//! Running worker roles: each role is one or two queues with their stage, run by the shared
//! queue runner until SIGTERM/SIGINT; plus `/livez`, `/readyz` and `/metrics` on
//! `COPYDESK_METRICS_LISTEN` and queue-depth gauges. Every `copydesk-<role>` binary and
//! `copydesk run` call [`run`].

pub mod health;
mod roles;

pub use roles::{Role, UnknownRole};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use copydesk::chatwoot::{ChatwootClient, ChatwootConfig};
use copydesk::config::{parsed_or, EnvSource, RedisConfig};
use copydesk::jobs::{Job, ALL_QUEUES};
use copydesk::queue::{run_worker, JobAttempt, JobError, QueueClient, QueueSettings};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::drafting::{Drafter, DraftingConfig};
use crate::jobs::assign_conversation::AssignStage;
use crate::jobs::generate_draft::DraftStage;
use crate::jobs::lookup_knowledge::KnowledgeStage;
use crate::jobs::post_note::NoteStage;
use crate::jobs::send_reply::ReplyStage;
use crate::jobs::track_conversation::LifecycleStage;
use crate::jobs::Deps;
use crate::knowledge::{KnowledgeBackend, KnowledgeConfig};
use crate::lifecycle::LifecyclePolicy;
use crate::routing::RoutingTable;

/// How often queue-depth gauges are refreshed.
const DEPTH_EXPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Everything a set of roles needs, built from the environment (fails naming the variable).
pub struct Fleet {
    roles: Vec<Role>,
    deps: Deps,
    settings: QueueSettings,
    metrics_listen: Option<SocketAddr>,
    knowledge: Option<(Arc<KnowledgeBackend>, usize)>,
    drafter: Option<Arc<Drafter>>,
    routing: Option<Arc<RoutingTable>>,
    lifecycle: Option<Arc<LifecyclePolicy>>,
    redrive: Option<crate::deadletter::RedriveSchedule>,
    waiting_poll: Duration,
    sweep_interval: Duration,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Reads the configuration the `roles` need and connects to Redis.
    pub async fn build(roles: &[Role], env: &dyn EnvSource) -> anyhow::Result<Self> {
        let redis = RedisConfig::from_env(env)?;
        let settings = QueueSettings::from_env(env)?;
        let allow_eviction = copydesk::queue::policy::allow_eviction_from_env(env)?;
        let metrics_listen = match env.get("COPYDESK_METRICS_LISTEN") {
            Some(_) => Some(parsed_or(
                env,
                "COPYDESK_METRICS_LISTEN",
                SocketAddr::from(([0, 0, 0, 0], 9090)),
            )?),
            None => None,
        };
        let needs_chatwoot = roles
            .iter()
            .any(|r| matches!(r, Role::Notes | Role::Assigner));
        let chatwoot = if needs_chatwoot || env.get("CHATWOOT_BASE_URL").is_some() {
            let config = ChatwootConfig::from_env(env).with_context(|| {
                format!(
                    "the {} role(s) call the Chatwoot API",
                    roles
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            Some(ChatwootClient::new(&config)?)
        } else {
            None
        };
        let queue = QueueClient::build(&redis)
            .await
            .with_context(|| format!("connecting to Redis at {}", redis.redacted_url()))?;
        queue.ping().await.with_context(|| {
            format!(
                "Redis at {} does not answer: check REDIS_URL and that Redis is up",
                redis.redacted_url()
            )
        })?;
        copydesk::queue::policy::enforce_eviction_policy(&queue, allow_eviction).await?;

        let knowledge = if roles.contains(&Role::Knowledge) {
            let config = KnowledgeConfig::from_env(env)?;
            let backend = KnowledgeBackend::build(&config).context(
                "building the knowledge index (COPYDESK_KNOWLEDGE_DIR / COPYDESK_KNOWLEDGE_URL)",
            )?;
            Some((Arc::new(backend), config.top_k))
        } else {
            None
        };
        let drafter = if roles.contains(&Role::Drafter) {
            let config = DraftingConfig::from_env(env)?;
            let drafter = Drafter::from_config(&config)?;
            drafter
                .check_backend()
                .await
                .context("checking the LLM (COPYDESK_LLM_URL / COPYDESK_LLM_MODEL)")?;
            Some(Arc::new(drafter))
        } else {
            None
        };
        let routing = if roles.contains(&Role::Assigner) || roles.contains(&Role::Lifecycle) {
            Some(Arc::new(RoutingTable::from_env(env)?))
        } else {
            None
        };
        let lifecycle = match (&routing, roles.contains(&Role::Lifecycle)) {
            (Some(table), true) => Some(Arc::new(LifecyclePolicy::from_env(env, *table.sla())?)),
            _ => None,
        };
        let redrive = if roles.contains(&Role::Deadletter) {
            Some(crate::deadletter::RedriveSchedule::from_env(env)?)
        } else {
            None
        };
        let waiting_poll = crate::jobs::assign_conversation::waiting_poll_from_env(env)?;
        let sweep_interval = crate::jobs::track_conversation::sweep_interval_from_env(env)?;
        Ok(Self {
            waiting_poll,
            sweep_interval,
            redrive,
            roles: roles.to_vec(),
            deps: Deps::new(queue, chatwoot),
            settings,
            metrics_listen,
            knowledge,
            drafter,
            routing,
            lifecycle,
        })
    }

    /// The queue client (tests and the demo read state through it).
    pub fn queue(&self) -> &QueueClient {
        &self.deps.queue
    }

    /// Runs every role until `shutdown` fires, then shuts down gracefully (stop claiming,
    /// finish in-flight jobs within `COPYDESK_SHUTDOWN_DEADLINE_MS`, give back the rest).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let metrics = copydesk::metrics::install();
        copydesk::metrics::worker_roles_up(self.roles.iter().map(|r| r.name()));
        let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
        if let Some(addr) = self.metrics_listen {
            let (listener, local) = health::bind(addr)
                .await
                .with_context(|| format!("binding COPYDESK_METRICS_LISTEN={addr}"))?;
            tracing::info!(addr = %local, "health and metrics listening");
            let state = health::HealthState {
                queue: self.deps.queue.clone(),
                metrics,
                shutdown: shutdown.clone(),
                roles: self.roles.iter().map(|r| r.name()).collect(),
            };
            tasks.spawn(async move {
                health::serve(listener, state).await;
                Ok(())
            });
            tasks.spawn(export_depth(self.deps.queue.clone(), shutdown.clone()));
        }
        let deps = &self.deps;
        let chatwoot = || {
            deps.chatwoot
                .clone()
                .context("CHATWOOT_BASE_URL is not set")
        };
        for role in &self.roles {
            match role {
                Role::Knowledge => {
                    let (backend, top_k) = self.knowledge.clone().context("knowledge not built")?;
                    self.spawn_stage(
                        &mut tasks,
                        &shutdown,
                        KnowledgeStage::new(deps.clone(), backend, top_k),
                    );
                }
                Role::Drafter => {
                    let drafter = self.drafter.clone().context("drafter not built")?;
                    self.spawn_stage(
                        &mut tasks,
                        &shutdown,
                        DraftStage::new(deps.clone(), drafter),
                    );
                }
                Role::Notes => {
                    let notes = NoteStage::new(deps.clone(), chatwoot()?);
                    self.spawn_stage(&mut tasks, &shutdown, notes);
                    let replies = ReplyStage::new(deps.clone(), chatwoot()?);
                    self.spawn_stage(&mut tasks, &shutdown, replies);
                }
                Role::Assigner => {
                    let table = self.routing.clone().context("routing not built")?;
                    let stage =
                        AssignStage::new(deps.clone(), table).with_waiting_poll(self.waiting_poll);
                    spawn_background(&mut tasks, stage.clone().run_background(shutdown.clone()));
                    self.spawn_stage(&mut tasks, &shutdown, stage);
                }
                Role::Lifecycle => {
                    let policy = self.lifecycle.clone().context("lifecycle not built")?;
                    let stage = LifecycleStage::new(deps.clone(), policy)
                        .with_sweep_interval(self.sweep_interval);
                    spawn_background(&mut tasks, stage.clone().run_background(shutdown.clone()));
                    self.spawn_stage(&mut tasks, &shutdown, stage);
                }
                Role::Deadletter => {
                    let redriver = crate::deadletter::Redriver::new(
                        deps.queue.clone(),
                        self.redrive.clone().context("redrive schedule not read")?,
                    );
                    spawn_background(&mut tasks, redriver.run(shutdown.clone()));
                }
            }
        }
        tracing::info!(roles = ?self.roles, "workers running");
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let result = joined.map_err(anyhow::Error::from).and_then(|inner| inner);
            if let Err(error) = result {
                tracing::error!(%error, "a worker task failed; stopping the others");
                shutdown.cancel();
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Runs `stage` on its queue with the shared runner until `shutdown` fires.
    fn spawn_stage<S: Stage>(
        &self,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        shutdown: &CancellationToken,
        stage: S,
    ) {
        let client = self.deps.queue.clone();
        let settings = self.settings.clone();
        let shutdown = shutdown.clone();
        let handler = move |job: S::Job, attempt: JobAttempt| {
            let stage = stage.clone();
            async move { stage.run_job(job, attempt).await }
        };
        tasks.spawn(async move {
            run_worker(client, settings, handler, shutdown)
                .await
                .with_context(|| format!("worker for queue {}", S::Job::QUEUE))
        });
    }
}

/// Background work of a role (polls, sweeps) that ends when its shutdown token fires.
fn spawn_background(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    work: impl Future<Output = ()> + Send + 'static,
) {
    tasks.spawn(async move {
        work.await;
        Ok(())
    });
}

/// A job handler of one queue, as the runtime runs it.
pub trait Stage: Clone + Send + Sync + 'static {
    /// The queue's job type.
    type Job: Job;
    /// Handles one attempt of `job`.
    fn run_job(
        &self,
        job: Self::Job,
        attempt: JobAttempt,
    ) -> impl Future<Output = Result<(), JobError>> + Send;
}

macro_rules! stage {
    ($stage:ty, $job:ty) => {
        impl Stage for $stage {
            type Job = $job;
            fn run_job(
                &self,
                job: $job,
                attempt: JobAttempt,
            ) -> impl Future<Output = Result<(), JobError>> + Send {
                self.handle(job, attempt)
            }
        }
    };
}

stage!(KnowledgeStage, copydesk::jobs::LookupKnowledge);
stage!(DraftStage, copydesk::jobs::GenerateDraft);
stage!(NoteStage, copydesk::jobs::PostNote);
stage!(ReplyStage, copydesk::jobs::SendReply);
stage!(AssignStage, copydesk::jobs::AssignConversation);
stage!(LifecycleStage, copydesk::jobs::TrackConversation);

/// Builds and runs `roles` until `shutdown` fires.
pub async fn run(
    roles: &[Role],
    env: &dyn EnvSource,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Fleet::build(roles, env).await?.run(shutdown).await
}

async fn export_depth(queue: QueueClient, shutdown: CancellationToken) -> anyhow::Result<()> {
    loop {
        if let Err(error) = queue.export_depth_metrics(&ALL_QUEUES).await {
            tracing::debug!(%error, "queue depth export failed");
        }
        if let Err(error) = copydesk::metrics::export_from_redis(&queue).await {
            tracing::debug!(%error, "approvals and Redis memory export failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(DEPTH_EXPORT_INTERVAL) => {}
        }
    }
}
