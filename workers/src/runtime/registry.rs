//! The registry: every job kind ([`copydesk::job_kinds`], each implementing
//! [`Kind`](crate::jobs::kind::Kind) in its handler file) and every service (a role's work
//! that is not a queue). The roles, `copydesk run --role`, the `copydesk-<role>` binaries and
//! the per-queue settings derive from these two lists.

use std::marker::PhantomData;

use anyhow::Context as _;
use copydesk::jobs::Job;
use copydesk::queue::settings::PerQueue;
use copydesk::queue::{run_worker, JobAttempt, QueueClient, QueueSettings};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::jobs::kind::{JobHandler, Kind, Role, Setup};

/// The tasks of a running fleet.
pub(crate) type Tasks = JoinSet<anyhow::Result<()>>;

/// A built piece of a role, ready to run: a queue worker with its handler, or a service.
pub(crate) trait Part: Send {
    /// Spawns its tasks, which end when `shutdown` fires.
    fn spawn(
        self: Box<Self>,
        tasks: &mut Tasks,
        queue: &QueueClient,
        settings: &QueueSettings,
        shutdown: &CancellationToken,
    );
}

/// One job kind of the registry, as the runtime sees it.
pub(crate) trait Entry: Sync {
    /// Its queue.
    fn queue(&self) -> &'static str;
    /// The role that runs it.
    fn role(&self) -> Role;
    /// Whether it calls Chatwoot.
    fn calls_chatwoot(&self) -> bool;
    /// Its queue's default settings.
    fn defaults(&self) -> PerQueue;
    /// Its handler, built from the configuration.
    fn build(&self, setup: &Setup<'_>) -> anyhow::Result<Box<dyn Part>>;
}

struct Registered<K>(PhantomData<fn() -> K>);

impl<K: Kind> Entry for Registered<K> {
    fn queue(&self) -> &'static str {
        K::QUEUE
    }
    fn role(&self) -> Role {
        K::ROLE
    }
    fn calls_chatwoot(&self) -> bool {
        K::CALLS_CHATWOOT
    }
    fn defaults(&self) -> PerQueue {
        K::defaults()
    }
    fn build(&self, setup: &Setup<'_>) -> anyhow::Result<Box<dyn Part>> {
        let handler = K::handler(setup).with_context(|| format!("setting up {}", K::QUEUE))?;
        Ok(Box::new(Worker(handler)))
    }
}

/// A queue worker running one handler.
struct Worker<H>(H);

impl<H: JobHandler> Part for Worker<H> {
    fn spawn(
        self: Box<Self>,
        tasks: &mut Tasks,
        queue: &QueueClient,
        settings: &QueueSettings,
        shutdown: &CancellationToken,
    ) {
        let handler = self.0;
        copydesk::queue::zero_job_counters(H::Job::QUEUE);
        if let Some(background) = handler.background(shutdown.clone()) {
            tasks.spawn(async move {
                background.await;
                Ok(())
            });
        }
        let client = queue.clone();
        let settings = settings.clone();
        let shutdown = shutdown.clone();
        let run = move |job: H::Job, attempt: JobAttempt| {
            let handler = handler.clone();
            // One span per run, a child of the trace context the job's envelope carries.
            let span = copydesk::telemetry::job_span(H::Job::QUEUE, job.meta(), attempt.attempt);
            async move { handler.run_job(job, attempt).instrument(span).await }
        };
        tasks.spawn(async move {
            run_worker(client, settings, run, shutdown)
                .await
                .with_context(|| format!("worker for queue {}", H::Job::QUEUE))
        });
    }
}

macro_rules! entries {
    ($($kind:ty),* $(,)?) => {
        &[$(&Registered::<$kind>(PhantomData)),*]
    };
}

/// Every job kind, in pipeline order.
pub(crate) static KINDS: &[&dyn Entry] = copydesk::job_kinds!(entries);

/// A role's work that is not a queue: built from the configuration like a handler.
pub(crate) struct Service {
    /// The role that runs it.
    pub(crate) role: Role,
    /// Builds it.
    pub(crate) build: fn(&Setup<'_>) -> anyhow::Result<Box<dyn Part>>,
}

/// Every service.
pub(crate) static SERVICES: &[Service] = &[
    Service {
        role: Role::DEADLETTER,
        build: redriver,
    },
    Service {
        role: Role::RECONCILER,
        build: reconciler,
    },
];

/// The reconciliation sweep ([`crate::reconcile`]).
fn reconciler(setup: &Setup<'_>) -> anyhow::Result<Box<dyn Part>> {
    let config = crate::reconcile::ReconcileConfig::from_env(setup.env)?;
    let chatwoot = setup
        .chatwoot()
        .context("the reconciler role reads conversations from the Chatwoot API")?;
    let sweep = crate::reconcile::Reconciler::new(setup.deps.queue.clone(), chatwoot, config);
    Ok(Box::new(Loop(move |shutdown| sweep.run(shutdown))))
}

/// The dead-letter re-drive loop ([`crate::deadletter`]).
fn redriver(setup: &Setup<'_>) -> anyhow::Result<Box<dyn Part>> {
    let schedule = crate::deadletter::RedriveSchedule::from_env(setup.env)?;
    let redriver = crate::deadletter::Redriver::new(setup.deps.queue.clone(), schedule);
    Ok(Box::new(Loop(move |shutdown| redriver.run(shutdown))))
}

/// A service: one loop until shutdown.
struct Loop<F>(F);

impl<F, Fut> Part for Loop<F>
where
    F: FnOnce(CancellationToken) -> Fut + Send,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    fn spawn(
        self: Box<Self>,
        tasks: &mut Tasks,
        _queue: &QueueClient,
        _settings: &QueueSettings,
        shutdown: &CancellationToken,
    ) {
        let work = (self.0)(shutdown.clone());
        tasks.spawn(async move {
            work.await;
            Ok(())
        });
    }
}

/// A role name that is not one.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {name:?}: expected one of {known}")]
pub struct UnknownRole {
    name: String,
    known: String,
}

impl Role {
    /// Every role, in pipeline order: those of the job kinds, then those of the services.
    pub fn all() -> Vec<Role> {
        let mut roles = Vec::new();
        let declared = KINDS.iter().map(|k| k.role());
        for role in declared.chain(SERVICES.iter().map(|s| s.role)) {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        roles
    }

    /// The queues the role consumes.
    pub fn queues(self) -> Vec<&'static str> {
        KINDS
            .iter()
            .filter(|k| k.role() == self)
            .map(|k| k.queue())
            .collect()
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = Role::all();
        all.iter()
            .copied()
            .find(|r| r.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole {
                name: s.to_owned(),
                known: all.iter().map(|r| r.name()).collect::<Vec<_>>().join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_is_registered_once_in_pipeline_order() {
        let queues: Vec<&str> = KINDS.iter().map(|k| k.queue()).collect();
        assert_eq!(queues, copydesk::jobs::ALL_QUEUES.to_vec());
    }

    #[test]
    fn roles_derive_from_the_kinds_and_services() {
        let names: Vec<&str> = Role::all().into_iter().map(Role::name).collect();
        assert_eq!(
            names,
            [
                "knowledge",
                "drafter",
                "notes",
                "assigner",
                "lifecycle",
                "deadletter",
                "reconciler"
            ]
        );
        assert_eq!(Role::NOTES.queues(), ["post_note", "send_reply"]);
        assert!(Role::DEADLETTER.queues().is_empty());
        assert_eq!("Notes".parse::<Role>().ok(), Some(Role::NOTES));
        let error = "nope".parse::<Role>().expect_err("unknown");
        assert!(error.to_string().contains("knowledge, drafter"), "{error}");
    }

    /// Every role has its `copydesk-<role>` binary and every role binary has its role.
    #[test]
    fn every_role_has_its_binary() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
        let mut binaries: Vec<String> = std::fs::read_dir(&dir)
            .expect("src/bin")
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let name = name.strip_suffix(".rs")?.strip_prefix("copydesk-")?;
                Some(name.to_owned())
            })
            .collect();
        binaries.sort();
        let mut roles: Vec<String> = Role::all().iter().map(|r| r.name().to_owned()).collect();
        roles.sort();
        assert_eq!(binaries, roles);
    }
}
