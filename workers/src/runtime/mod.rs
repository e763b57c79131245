//! Running worker roles: a role is the job kinds that name it (each a queue with its handler,
//! run by the shared queue runner, plus the handler's background work) and its services, as
//! listed by the registry, until SIGTERM/SIGINT; plus `/livez`, `/readyz` and `/metrics` on
//! `COPYDESK_METRICS_LISTEN` and queue-depth gauges. Every `copydesk-<role>` binary and
//! `copydesk run` call [`run`].

pub mod health;
mod registry;

pub use crate::jobs::kind::Role;
pub use registry::UnknownRole;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use copydesk::chatwoot::ChatwootAccounts;
use copydesk::config::{parsed_or, EnvSource, RedisConfig};
use copydesk::jobs::ALL_QUEUES;
use copydesk::queue::{QueueClient, QueueSettings};
use tokio_util::sync::CancellationToken;

use crate::drafting::{Drafter, DraftingConfig};
use crate::jobs::kind::Setup;
use crate::jobs::Deps;
use registry::{Part, Tasks, KINDS, SERVICES};

/// How often queue-depth gauges are refreshed.
const DEPTH_EXPORT_INTERVAL: Duration = Duration::from_secs(5);

/// A set of roles built from the environment (fails naming the variable), ready to run.
pub struct Fleet {
    roles: Vec<Role>,
    queue: QueueClient,
    settings: QueueSettings,
    metrics_listen: Option<SocketAddr>,
    parts: Vec<Box<dyn Part>>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Reads the configuration the `roles` need, builds the handlers of their job kinds and
    /// their services, then checks that Redis answers (so a bad setting is reported before an
    /// unreachable Redis).
    pub async fn build(roles: &[Role], env: &dyn EnvSource) -> anyhow::Result<Self> {
        let redis = RedisConfig::from_env(env)?;
        let settings =
            QueueSettings::from_env_with(env, KINDS.iter().map(|k| (k.queue(), k.defaults())))?;
        let allow_eviction = copydesk::queue::policy::allow_eviction_from_env(env)?;
        let metrics_listen = match env.get("COPYDESK_METRICS_LISTEN") {
            Some(_) => Some(parsed_or(
                env,
                "COPYDESK_METRICS_LISTEN",
                SocketAddr::from(([0, 0, 0, 0], 9090)),
            )?),
            None => None,
        };
        let kinds: Vec<_> = KINDS.iter().filter(|k| roles.contains(&k.role())).collect();
        let needs_chatwoot = kinds.iter().any(|k| k.calls_chatwoot());
        let chatwoot = if needs_chatwoot || env.get("CHATWOOT_BASE_URL").is_some() {
            let accounts = ChatwootAccounts::from_env(env).with_context(|| {
                format!(
                    "the {} role(s) call the Chatwoot API",
                    roles
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            Some(accounts)
        } else {
            None
        };
        // The client connects lazily: every role's configuration is read (and refused with
        // its own error) before Redis is asked anything.
        let queue = QueueClient::build(&redis)
            .await
            .with_context(|| format!("connecting to Redis at {}", redis.redacted_url()))?;
        let setup = Setup::new(env, Deps::with_accounts(queue.clone(), chatwoot));
        let mut parts = Vec::new();
        for kind in kinds {
            parts.push(kind.build(&setup)?);
        }
        for service in SERVICES.iter().filter(|s| roles.contains(&s.role)) {
            parts.push((service.build)(&setup)?);
        }
        queue.ping().await.with_context(|| {
            format!(
                "Redis at {} does not answer: {}",
                redis.redacted_url(),
                redis.connect_hint()
            )
        })?;
        copydesk::queue::policy::enforce_eviction_policy(&queue, allow_eviction).await?;

        // The LLM's model name is checked once at start-up, where the drafter runs here.
        if roles.contains(&Role::DRAFTER) {
            let drafter = Drafter::from_config(&DraftingConfig::from_env(env)?)?;
            drafter
                .check_backend()
                .await
                .context("checking the LLM (COPYDESK_LLM_URL / COPYDESK_LLM_MODEL)")?;
        }
        Ok(Self {
            roles: roles.to_vec(),
            queue,
            settings,
            metrics_listen,
            parts,
        })
    }

    /// The queue client (tests and the demo read state through it).
    pub fn queue(&self) -> &QueueClient {
        &self.queue
    }

    /// Runs every role until `shutdown` fires, then shuts down gracefully (stop claiming,
    /// finish in-flight jobs within `COPYDESK_SHUTDOWN_DEADLINE_MS`, give back the rest).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let metrics = copydesk::metrics::install();
        copydesk::metrics::worker_roles_up(self.roles.iter().map(|r| r.name()));
        copydesk::queue::zero_dead_letter_counters();
        let mut tasks = Tasks::new();
        if let Some(addr) = self.metrics_listen {
            let (listener, local) = health::bind(addr)
                .await
                .with_context(|| format!("binding COPYDESK_METRICS_LISTEN={addr}"))?;
            tracing::info!(addr = %local, "health and metrics listening");
            let state = health::HealthState {
                queue: self.queue.clone(),
                metrics,
                shutdown: shutdown.clone(),
                roles: self.roles.iter().map(|r| r.name()).collect(),
            };
            tasks.spawn(async move {
                health::serve(listener, state).await;
                Ok(())
            });
            tasks.spawn(export_depth(self.queue.clone(), shutdown.clone()));
        }
        for part in self.parts {
            part.spawn(&mut tasks, &self.queue, &self.settings, &shutdown);
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
}

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
        if let Err(error) = copydesk::observe::export_from_redis(&queue).await {
            tracing::debug!(%error, "approvals and Redis memory export failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(DEPTH_EXPORT_INTERVAL) => {}
        }
    }
}
