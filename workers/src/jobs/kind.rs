//! What a job kind declares to be run: [`Kind`] (its role, default settings and how its
//! handler is built from the configuration read at start) and [`JobHandler`] (one attempt,
//! plus optional background work). Each handler file implements both for its payload type
//! and handler; the runtime's registry lists every kind through [`copydesk::job_kinds`].

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context as _;
use copydesk::chatwoot::ChatwootAccounts;
use copydesk::config::EnvSource;
use copydesk::jobs::Job;
use copydesk::queue::settings::PerQueue;
use copydesk::queue::{JobAttempt, JobError};
use tokio_util::sync::CancellationToken;

use super::Deps;
use crate::routing::RoutingTable;

/// A worker role: what one `copydesk-<role>` binary (or `copydesk run --role <role>`) runs.
/// Roles are named by the job kinds ([`Kind::ROLE`]) and services that declare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(&'static str);

impl Role {
    /// `lookup_knowledge`.
    pub const KNOWLEDGE: Role = Role("knowledge");
    /// `generate_draft`.
    pub const DRAFTER: Role = Role("drafter");
    /// `post_note` and `send_reply`.
    pub const NOTES: Role = Role("notes");
    /// `assign_conversation`.
    pub const ASSIGNER: Role = Role("assigner");
    /// `track_conversation`.
    pub const LIFECYCLE: Role = Role("lifecycle");
    /// Dead-letter re-drive.
    pub const DEADLETTER: Role = Role("deadletter");
    /// The reconciliation sweep (webhooks Chatwoot never delivered).
    pub const RECONCILER: Role = Role("reconciler");

    /// The role's name (`copydesk-<name>` is its binary).
    pub fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Background work of a handler (a poll, a sweep) that ends when its shutdown token fires.
pub type Background = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A job handler of one queue, as the runtime runs it.
pub trait JobHandler: Clone + Send + Sync + 'static {
    /// The queue's job type.
    type Job: Job;
    /// Handles one attempt of `job`.
    fn run_job(
        &self,
        job: Self::Job,
        attempt: JobAttempt,
    ) -> impl Future<Output = Result<(), JobError>> + Send;
    /// Work next to the queue worker until `shutdown` fires; none by default.
    fn background(&self, shutdown: CancellationToken) -> Option<Background> {
        let _ = shutdown;
        None
    }
}

/// A job kind as the workers run it, implemented by its payload type in its handler file.
pub trait Kind: Job {
    /// The role that runs it.
    const ROLE: Role;
    /// True when its handler calls the Chatwoot API: a role running it needs `CHATWOOT_*`.
    const CALLS_CHATWOOT: bool = false;
    /// The handler.
    type Handler: JobHandler<Job = Self>;
    /// The queue's settings by default (the `COPYDESK_<SETTING>_<QUEUE>` variables override
    /// them); the global settings unless the kind says otherwise.
    fn defaults() -> PerQueue {
        PerQueue::default()
    }
    /// Builds the handler from the configuration, once, at start (a bad value fails here,
    /// naming its variable).
    fn handler(setup: &Setup<'_>) -> anyhow::Result<Self::Handler>;
}

/// What building handlers may use: the environment and what is shared between the kinds of
/// one process (read once, whichever kind asks first).
pub struct Setup<'a> {
    /// Where configuration is read from.
    pub env: &'a dyn EnvSource,
    /// Queue, approvals and (when configured) Chatwoot.
    pub deps: Deps,
    routing: OnceCell<Arc<RoutingTable>>,
}

impl std::fmt::Debug for Setup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup").finish_non_exhaustive()
    }
}

impl<'a> Setup<'a> {
    /// Setup reading `env`, with `deps`.
    pub fn new(env: &'a dyn EnvSource, deps: Deps) -> Self {
        Self {
            env,
            deps,
            routing: OnceCell::new(),
        }
    }

    /// The Chatwoot clients of every account; an error when `CHATWOOT_*` is not configured.
    pub fn chatwoot(&self) -> anyhow::Result<Arc<ChatwootAccounts>> {
        self.deps.chatwoot.clone().context(
            "CHATWOOT_BASE_URL is not set (set CHATWOOT_BASE_URL and COPYDESK_ACCOUNTS_FILE, or \
             CHATWOOT_BASE_URL, CHATWOOT_API_TOKEN and CHATWOOT_ACCOUNT_ID)",
        )
    }

    /// The routing table (`COPYDESK_ROUTING_FILE`), read once per process.
    pub fn routing(&self) -> anyhow::Result<Arc<RoutingTable>> {
        if let Some(table) = self.routing.get() {
            return Ok(table.clone());
        }
        let table = Arc::new(RoutingTable::from_env(self.env)?);
        Ok(self.routing.get_or_init(|| table).clone())
    }
}
