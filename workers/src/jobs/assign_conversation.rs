//! `assign_conversation` (`copydesk-assigner`): routing decision → Chatwoot assignment and
//! priority.
//!
//! One job routes one conversation with the decision tree of [`crate::routing`] (escalation,
//! safety, VIP, intent, default; lowest open workload among online agents, round robin among
//! equals) and applies the result in Chatwoot: the team (`Assignment::Team`), then the agent,
//! then the priority (only ever raised: Copydesk never lowers a priority someone set). What
//! the tree needs and Chatwoot does not keep, Copydesk keeps in Redis:
//!
//! - agents' availability comes from `GET .../agents` on every decision; team membership from
//!   the routing file's agent lists, plus `GET .../teams/{id}/team_members` for teams the file
//!   lists no agents for (cached for [`MEMBERSHIP_CACHE_TTL`]);
//! - open workload per agent is ours ([`super::workload`]): Chatwoot's API has no per-agent
//!   open count, so we count what we assign, and the lifecycle stage moves or releases it;
//! - round-robin cursors are one JSON [`RoundRobin`] per account at
//!   `routing:{account}:round_robin`, so replicas take turns together;
//! - conversations nobody can take now wait on [`super::waiting_list`]: they get the team
//!   and the priority at once, and an agent as soon as one is online (the background poll
//!   every `COPYDESK_WAITING_POLL_MS`, or an `AgentOnline` job).
//!
//! Rules on top of the tree:
//! - a conversation already assigned to an agent who is online keeps that agent on a new
//!   conversation or a new draft (only its priority may rise); one whose agent is offline or
//!   busy is routed again;
//! - an escalation always routes again, to the named team, and posts the operator's private
//!   note "Escalated by {operator} to {team}: {note}" exactly once (idempotency key
//!   `copydesk-escalation:{approval id}`); an unknown team is a permanent error naming the
//!   known ones;
//! - Chatwoot answering an agent assignment with `null` means it *unassigned* the
//!   conversation (unknown agent): that is a retryable error, never a silent success.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use copydesk::approvals::{now_ms, Priority};
use copydesk::chatwoot::{
    AssignOutcome, Assignment, AvailabilityStatus, ChatwootClient, Conversation,
    ConversationStatus, MessageType, NewMessage,
};
use copydesk::config::{millis_or, ConfigError, EnvSource};
use copydesk::jobs::{AssignConversation, AssignReason};
use copydesk::queue::{JobAttempt, JobError};
use tokio_util::sync::CancellationToken;

use super::kind::{Background, JobHandler, Kind, Role, Setup};
use super::post_once::{PostOnce, Posted, Step};
use super::waiting_list::{WaitingEntry, WaitingList, WaitingListError};
use super::workload::Workload;
use super::{chatwoot_failure, store_failure, Deps};
use crate::routing::{
    decide, AgentState, Availability, BusyAgents, RoundRobin, RoutingDecision, RoutingInput,
    RoutingReason, RoutingTable, TeamRef,
};

/// The variable holding the waiting-list poll interval in milliseconds.
pub const WAITING_POLL_VAR: &str = "COPYDESK_WAITING_POLL_MS";

/// Default waiting-list poll interval.
pub const DEFAULT_WAITING_POLL: Duration = Duration::from_secs(15);

/// Waiting conversations looked at per pass (most urgent, then oldest, first).
pub const WAITING_BATCH: usize = 50;

/// How long one replica may hold the waiting-list pass lock (a pass normally takes far less;
/// the lock only keeps two replicas from assigning the same conversation twice).
const PASS_LOCK_TTL: Duration = Duration::from_secs(60);

/// How long team memberships read from Chatwoot are reused.
pub const MEMBERSHIP_CACHE_TTL: Duration = Duration::from_secs(60);

/// How long the marker of a posted escalation note is kept.
const ESCALATION_NOTE_MARKER_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The idempotency key of an escalation's private note.
pub fn escalation_note_key(approval_id: &str) -> String {
    format!("copydesk-escalation:{approval_id}")
}

/// The private note an escalation posts.
pub fn escalation_note(operator: &str, team: &str, note: &str) -> String {
    let note = note.trim();
    if note.is_empty() {
        format!("Escalated by {operator} to {team}.")
    } else {
        format!("Escalated by {operator} to {team}: {note}")
    }
}

/// `COPYDESK_WAITING_POLL_MS` (default 15 s; at least 1 ms).
pub fn waiting_poll_from_env(env: &dyn EnvSource) -> Result<Duration, ConfigError> {
    let poll = millis_or(env, WAITING_POLL_VAR, DEFAULT_WAITING_POLL)?;
    if poll.is_zero() {
        return Err(ConfigError::Invalid {
            var: WAITING_POLL_VAR,
            value: "0".into(),
            reason: "must be at least 1 millisecond".into(),
        });
    }
    Ok(poll)
}

/// What one assignment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// The conversation was assigned to a team and an agent.
    Assigned {
        /// The team.
        team: TeamRef,
        /// The agent.
        agent_id: i64,
        /// The priority it has now in Chatwoot.
        priority: Priority,
        /// The branch of the tree.
        reason: RoutingReason,
    },
    /// Its online assignee kept it; only the priority may have risen.
    Kept {
        /// The assignee.
        agent_id: i64,
        /// The priority it has now in Chatwoot.
        priority: Priority,
    },
    /// Nobody could take it: assigned to the team, waiting for an agent.
    Waiting {
        /// The team.
        team: TeamRef,
        /// The priority it has now in Chatwoot.
        priority: Priority,
        /// The branch of the tree.
        reason: RoutingReason,
    },
    /// Nothing to do (resolved meanwhile, or a waiting-list pass).
    Skipped(&'static str),
}

/// What one waiting-list pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitingPass {
    /// Conversations that got an agent.
    pub assigned: usize,
    /// Conversations dropped from the list (resolved, deleted, or taken by hand).
    pub dropped: usize,
    /// Conversations still waiting among those looked at.
    pub still_waiting: usize,
}

/// Team id → member agent ids, read from Chatwoot, with the time it was read.
type Memberships = Arc<HashMap<i64, Vec<i64>>>;

impl Kind for AssignConversation {
    const ROLE: Role = Role::ASSIGNER;
    const CALLS_CHATWOOT: bool = true;
    type Handler = Handler;
    fn handler(setup: &Setup<'_>) -> anyhow::Result<Handler> {
        let poll = waiting_poll_from_env(setup.env)?;
        Ok(Handler::new(setup.deps.clone(), setup.routing()?).with_waiting_poll(poll))
    }
}

impl JobHandler for Handler {
    type Job = AssignConversation;
    async fn run_job(&self, job: AssignConversation, attempt: JobAttempt) -> Result<(), JobError> {
        self.handle(job, attempt).await
    }
    fn background(&self, shutdown: CancellationToken) -> Option<Background> {
        Some(Box::pin(self.clone().run_background(shutdown)))
    }
}

/// The `assign_conversation` handler.
#[derive(Clone, Debug)]
pub struct Handler {
    deps: Deps,
    table: Arc<RoutingTable>,
    workload: Workload,
    waiting: WaitingList,
    memberships: Arc<Mutex<Option<(Instant, Memberships)>>>,
    waiting_poll: Duration,
    /// The API token's own user (`GET /profile`), once known: never routed to.
    own_user: Arc<Mutex<Option<i64>>>,
}

impl Handler {
    /// A stage routing with `table`.
    pub fn new(deps: Deps, table: Arc<RoutingTable>) -> Self {
        let conn = deps.queue.connection();
        let keys = deps.queue.keys().clone();
        Self {
            workload: Workload::new(conn.clone(), keys.clone()),
            waiting: WaitingList::new(conn, keys),
            deps,
            table,
            memberships: Arc::default(),
            waiting_poll: DEFAULT_WAITING_POLL,
            own_user: Arc::default(),
        }
    }

    /// The same handler polling the waiting list every `poll` (instead of
    /// [`DEFAULT_WAITING_POLL`]; the role reads `COPYDESK_WAITING_POLL_MS` at start).
    pub fn with_waiting_poll(mut self, poll: Duration) -> Self {
        self.waiting_poll = poll;
        self
    }

    /// The open-workload records.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The waiting list.
    pub fn waiting_list(&self) -> &WaitingList {
        &self.waiting
    }

    /// The Redis key of an account's round-robin cursors (JSON [`RoundRobin`]).
    pub fn round_robin_key(&self, account_id: i64) -> String {
        self.deps.queue.keys().round_robin(account_id)
    }

    /// Background work next to the queue worker: the waiting-list poll, until `shutdown`
    /// fires. A pass costs one `ZCARD` while the list is empty.
    pub async fn run_background(self, shutdown: CancellationToken) {
        let poll = self.waiting_poll;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(poll) => {}
            }
            if self.deps.chatwoot.is_none() {
                continue;
            }
            match self.assign_waiting().await {
                Ok(pass) if pass.assigned + pass.dropped > 0 => {
                    tracing::info!(
                        assigned = pass.assigned,
                        dropped = pass.dropped,
                        still_waiting = pass.still_waiting,
                        "waiting-list pass"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "waiting-list pass failed; next poll retries"),
            }
        }
    }

    /// Handles one attempt.
    pub async fn handle(
        &self,
        job: AssignConversation,
        attempt: JobAttempt,
    ) -> Result<(), JobError> {
        self.assign(&job, attempt).await.map(|_| ())
    }

    /// Routes the job's conversation and applies the decision in Chatwoot.
    pub async fn assign(
        &self,
        job: &AssignConversation,
        _attempt: JobAttempt,
    ) -> Result<Routed, JobError> {
        let chatwoot = self.chatwoot()?;
        if job.account_id != chatwoot.account_id() {
            return Err(JobError::permanent(anyhow!(
                "job for Chatwoot account {} but this assigner serves account {} \
                 (CHATWOOT_ACCOUNT_ID)",
                job.account_id,
                chatwoot.account_id()
            )));
        }
        let conversation_id = job.conversation_id;
        match &job.reason {
            AssignReason::AgentOnline => {
                let pass = self.assign_waiting().await?;
                tracing::info!(assigned = pass.assigned, "agent online: waiting-list pass");
                Ok(Routed::Skipped("waiting-list pass"))
            }
            AssignReason::NewConversation { first_message } => {
                let conversation = self.conversation(chatwoot, conversation_id).await?;
                if conversation.status == ConversationStatus::Resolved {
                    return Ok(Routed::Skipped("conversation is resolved"));
                }
                let text = first_message
                    .clone()
                    .or_else(|| last_customer_text(&conversation))
                    .unwrap_or_default();
                let input = RoutingInput {
                    text,
                    vip: self.is_vip(&conversation),
                    ..RoutingInput::default()
                };
                self.route(chatwoot, job.account_id, &conversation, input, true)
                    .await
            }
            AssignReason::Drafted {
                approval_id,
                priority,
                text,
                vip,
            } => {
                let conversation = self.conversation(chatwoot, conversation_id).await?;
                if conversation.status == ConversationStatus::Resolved {
                    return Ok(Routed::Skipped("conversation is resolved"));
                }
                let safety = self
                    .deps
                    .approvals
                    .get(approval_id)
                    .await
                    .map_err(store_failure)?
                    .is_some_and(|item| item.doc.safety);
                let priority = match priority.parse::<Priority>() {
                    Ok(p) => Some(p),
                    Err(error) => {
                        tracing::warn!(%error, "draft priority not understood; routing as normal");
                        None
                    }
                };
                let input = RoutingInput {
                    text: text.clone(),
                    priority,
                    vip: *vip || self.is_vip(&conversation),
                    safety,
                    escalation_team: None,
                };
                self.route(chatwoot, job.account_id, &conversation, input, true)
                    .await
            }
            AssignReason::Escalation {
                approval_id,
                team,
                note,
                operator,
            } => {
                let Some(named) = self.table.team(team) else {
                    let known: Vec<&str> =
                        self.table.teams().map(|t| t.team.name.as_str()).collect();
                    return Err(JobError::permanent(anyhow!(
                        "escalation of approval {approval_id} to unknown team {team:?}; \
                         known teams: {}",
                        known.join(", ")
                    )));
                };
                let team_name = named.team.name.clone();
                let conversation = self.conversation(chatwoot, conversation_id).await?;
                let doc = self
                    .deps
                    .approvals
                    .get(approval_id)
                    .await
                    .map_err(store_failure)?
                    .map(|item| item.doc);
                let after_id = doc.as_ref().map_or(0, |d| d.message_id);
                let input = RoutingInput {
                    text: doc
                        .as_ref()
                        .map(|d| d.customer_message.clone())
                        .or_else(|| last_customer_text(&conversation))
                        .unwrap_or_default(),
                    priority: doc.as_ref().map(|d| d.priority),
                    vip: doc.as_ref().is_some_and(|d| d.vip) || self.is_vip(&conversation),
                    safety: doc.as_ref().is_some_and(|d| d.safety),
                    escalation_team: Some(team_name.clone()),
                };
                let routed = self
                    .route(chatwoot, job.account_id, &conversation, input, false)
                    .await?;
                self.post_escalation_note(
                    chatwoot,
                    job.account_id,
                    conversation_id,
                    approval_id,
                    &escalation_note(operator, &team_name, note),
                    after_id,
                )
                .await?;
                Ok(routed)
            }
        }
    }

    /// One pass over the waiting list: every waiting conversation (up to [`WAITING_BATCH`],
    /// most urgent and oldest first) that an online agent can take now gets one. Only one
    /// replica runs a pass at a time; the others return an empty pass.
    pub async fn assign_waiting(&self) -> Result<WaitingPass, JobError> {
        let chatwoot = self.chatwoot()?;
        let account_id = chatwoot.account_id();
        if self
            .waiting
            .len(account_id)
            .await
            .map_err(waiting_failure)?
            == 0
        {
            return Ok(WaitingPass::default());
        }
        let Some(token) = self
            .waiting
            .try_lock(account_id, PASS_LOCK_TTL)
            .await
            .map_err(waiting_failure)?
        else {
            return Ok(WaitingPass::default());
        };
        let result = self.assign_waiting_locked(chatwoot, account_id).await;
        if let Err(error) = self.waiting.unlock(account_id, &token).await {
            tracing::warn!(%error, "could not release the waiting-list lock; it expires by itself");
        }
        result
    }

    async fn assign_waiting_locked(
        &self,
        chatwoot: &ChatwootClient,
        account_id: i64,
    ) -> Result<WaitingPass, JobError> {
        let mut pass = WaitingPass::default();
        let entries = self
            .waiting
            .first(account_id, WAITING_BATCH)
            .await
            .map_err(waiting_failure)?;
        let mut agents = self.agent_states(chatwoot, account_id, None).await?;
        let fallback = self.table.busy_agents == BusyAgents::Fallback;
        let anyone_available = agents.iter().any(|a| {
            a.availability == Availability::Online
                || (fallback && a.availability == Availability::Busy)
        });
        if !anyone_available {
            pass.still_waiting = entries.len();
            return Ok(pass);
        }
        for (conversation_id, entry) in entries {
            let conversation = match chatwoot.get_conversation(conversation_id).await {
                Ok(c) => c,
                Err(error) if error.status() == Some(404) => {
                    tracing::info!(
                        conversation = conversation_id,
                        "waiting conversation is gone"
                    );
                    self.waiting
                        .remove(account_id, conversation_id)
                        .await
                        .map_err(waiting_failure)?;
                    pass.dropped += 1;
                    continue;
                }
                Err(error) => return Err(chatwoot_failure(error)),
            };
            if conversation.status == ConversationStatus::Resolved {
                self.waiting
                    .remove(account_id, conversation_id)
                    .await
                    .map_err(waiting_failure)?;
                pass.dropped += 1;
                continue;
            }
            if let Some(assignee) = online_assignee(&conversation, &agents) {
                // Someone took it by hand meanwhile.
                self.record_owner(account_id, conversation_id, assignee)
                    .await?;
                self.waiting
                    .remove(account_id, conversation_id)
                    .await
                    .map_err(waiting_failure)?;
                pass.dropped += 1;
                continue;
            }
            let mut round_robin = self.load_round_robin(account_id).await?;
            let decision = decide(&self.table, &entry.input, &agents, &mut round_robin);
            if decision.agent_id().is_none() {
                pass.still_waiting += 1;
                continue;
            }
            let routed = self
                .apply(
                    chatwoot,
                    account_id,
                    &conversation,
                    &entry.input,
                    decision,
                    &round_robin,
                )
                .await?;
            if let Routed::Assigned { agent_id, .. } = routed {
                if let Some(agent) = agents.iter_mut().find(|a| a.id == agent_id) {
                    agent.open_conversations += 1;
                }
                pass.assigned += 1;
            }
        }
        Ok(pass)
    }

    /// Decides and applies, keeping an online assignee when `keep_online_assignee`.
    async fn route(
        &self,
        chatwoot: &ChatwootClient,
        account_id: i64,
        conversation: &Conversation,
        input: RoutingInput,
        keep_online_assignee: bool,
    ) -> Result<Routed, JobError> {
        let agents = self
            .agent_states(chatwoot, account_id, Some(conversation.id))
            .await?;
        if keep_online_assignee {
            if let Some(agent_id) = online_assignee(conversation, &agents) {
                // Only the priority the tree would give may rise; the cursor is not advanced.
                let wanted =
                    decide(&self.table, &input, &agents, &mut RoundRobin::new()).priority();
                let priority = self.raise_priority(chatwoot, conversation, wanted).await?;
                self.record_owner(account_id, conversation.id, agent_id)
                    .await?;
                self.waiting
                    .remove(account_id, conversation.id)
                    .await
                    .map_err(waiting_failure)?;
                tracing::info!(
                    conversation = conversation.id,
                    agent = agent_id,
                    priority = priority.as_str(),
                    "conversation stays with its online assignee"
                );
                return Ok(Routed::Kept { agent_id, priority });
            }
        }
        let mut round_robin = self.load_round_robin(account_id).await?;
        let decision = decide(&self.table, &input, &agents, &mut round_robin);
        self.apply(
            chatwoot,
            account_id,
            conversation,
            &input,
            decision,
            &round_robin,
        )
        .await
    }

    /// Applies a decision in Chatwoot and records it (workload, cursor, waiting list).
    async fn apply(
        &self,
        chatwoot: &ChatwootClient,
        account_id: i64,
        conversation: &Conversation,
        input: &RoutingInput,
        decision: RoutingDecision,
        round_robin: &RoundRobin,
    ) -> Result<Routed, JobError> {
        let conversation_id = conversation.id;
        match decision {
            RoutingDecision::Assign {
                team,
                agent_id,
                priority,
                reason,
                pick,
            } => {
                self.assign_team(chatwoot, conversation, &team).await?;
                let already = conversation
                    .meta
                    .assignee
                    .as_ref()
                    .is_some_and(|a| a.id == agent_id)
                    && conversation
                        .meta
                        .team
                        .as_ref()
                        .is_some_and(|t| t.id == team.id);
                if !already {
                    let outcome = chatwoot
                        .assign(conversation_id, Assignment::Agent(agent_id))
                        .await
                        .map_err(chatwoot_failure)?;
                    if let Err(error) = check_agent_outcome(&outcome, conversation_id, agent_id) {
                        // Chatwoot unassigned it: our view of the agents is stale.
                        self.forget_memberships();
                        return Err(error);
                    }
                }
                let priority = self
                    .raise_priority(chatwoot, conversation, priority)
                    .await?;
                self.record_owner(account_id, conversation_id, agent_id)
                    .await?;
                self.save_round_robin(account_id, round_robin).await?;
                self.waiting
                    .remove(account_id, conversation_id)
                    .await
                    .map_err(waiting_failure)?;
                tracing::info!(
                    conversation = conversation_id,
                    team = %team.name,
                    agent = agent_id,
                    priority = priority.as_str(),
                    branch = reason.branch(),
                    reason = %reason,
                    tied = pick.tied,
                    outside_team = pick.outside_team,
                    "conversation assigned"
                );
                Ok(Routed::Assigned {
                    team,
                    agent_id,
                    priority,
                    reason,
                })
            }
            RoutingDecision::Wait {
                team,
                priority,
                reason,
            } => {
                self.assign_team(chatwoot, conversation, &team).await?;
                let priority = self
                    .raise_priority(chatwoot, conversation, priority)
                    .await?;
                let entry = WaitingEntry {
                    input: RoutingInput {
                        priority: Some(priority),
                        ..input.clone()
                    },
                    team: team.clone(),
                    priority,
                    since_ms: now_ms(),
                };
                self.waiting
                    .put(account_id, conversation_id, entry)
                    .await
                    .map_err(waiting_failure)?;
                tracing::info!(
                    conversation = conversation_id,
                    team = %team.name,
                    priority = priority.as_str(),
                    branch = reason.branch(),
                    reason = %reason,
                    "nobody available: assigned to the team, waiting for an agent"
                );
                Ok(Routed::Waiting {
                    team,
                    priority,
                    reason,
                })
            }
        }
    }

    /// Assigns the team unless the conversation already has it.
    async fn assign_team(
        &self,
        chatwoot: &ChatwootClient,
        conversation: &Conversation,
        team: &TeamRef,
    ) -> Result<(), JobError> {
        if conversation
            .meta
            .team
            .as_ref()
            .is_some_and(|t| t.id == team.id)
        {
            return Ok(());
        }
        let outcome = chatwoot
            .assign(conversation.id, Assignment::Team(team.id))
            .await
            .map_err(chatwoot_failure)?;
        match outcome {
            AssignOutcome::Team(_) => Ok(()),
            AssignOutcome::Cleared | AssignOutcome::Agent(_) => Err(JobError::permanent(anyhow!(
                "Chatwoot does not know team {} ({:?}) of the routing file: it cleared the \
                 team of conversation {} instead; fix the team id in COPYDESK_ROUTING_FILE",
                team.id,
                team.name,
                conversation.id
            ))),
        }
    }

    /// Sets the priority to the more urgent of the current one and `wanted`; returns it.
    async fn raise_priority(
        &self,
        chatwoot: &ChatwootClient,
        conversation: &Conversation,
        wanted: Priority,
    ) -> Result<Priority, JobError> {
        let current: Option<Priority> = conversation.priority.and_then(|p| p.as_str().parse().ok());
        // `Priority` sorts the most urgent first, so `min` is "the more urgent of".
        let target = current.map_or(wanted, |c| c.min(wanted));
        if current != Some(target) {
            chatwoot
                .toggle_priority(conversation.id, Some(target.into()))
                .await
                .map_err(chatwoot_failure)?;
        }
        Ok(target)
    }

    /// Posts the escalation's private note unless an earlier run did.
    async fn post_escalation_note(
        &self,
        chatwoot: &ChatwootClient,
        account_id: i64,
        conversation_id: i64,
        approval_id: &str,
        text: &str,
        after_id: i64,
    ) -> Result<(), JobError> {
        let key = escalation_note_key(approval_id);
        let marker = self
            .deps
            .queue
            .keys()
            .escalation_note(account_id, approval_id);
        let mut conn = self.deps.queue.connection();
        let posted: Option<i64> = redis::cmd("GET")
            .arg(&marker)
            .query_async(&mut conn)
            .await
            .map_err(redis_failure)?;
        if posted.is_some() {
            return Ok(());
        }
        let post = PostOnce {
            chatwoot,
            queue: &self.deps.queue,
            conversation_id,
            after_id,
            message: NewMessage::private_note(text).with_idempotency_key(key),
        };
        let record = async |posted: &Posted<()>| {
            let (Posted::Found(note_id) | Posted::New(note_id)) = posted else {
                return Ok(());
            };
            let mut conn = self.deps.queue.connection();
            let () = redis::cmd("SET")
                .arg(&marker)
                .arg(*note_id)
                .arg("EX")
                .arg(ESCALATION_NOTE_MARKER_TTL.as_secs())
                .query_async(&mut conn)
                .await
                .map_err(redis_failure)?;
            Ok(())
        };
        post.run(|_| Step::Post, record).await.map(|_| ())
    }

    /// What the tree knows about every agent of the account: availability from Chatwoot,
    /// teams from the routing file and Chatwoot's memberships, open workload from Redis (not
    /// counting `routing` itself, which is being routed again).
    async fn agent_states(
        &self,
        chatwoot: &ChatwootClient,
        account_id: i64,
        routing: Option<i64>,
    ) -> Result<Vec<AgentState>, JobError> {
        let own_user = self.own_user(chatwoot).await;
        let mut agents = chatwoot.list_agents().await.map_err(chatwoot_failure)?;
        // Copydesk's own user (the token's) answers as a bot, never as a human agent.
        agents.retain(|agent| Some(agent.id) != own_user);
        let memberships = self.memberships(chatwoot).await?;
        let ids: Vec<i64> = agents.iter().map(|a| a.id).collect();
        let counts = self
            .workload
            .open_counts(account_id, &ids)
            .await
            .map_err(redis_failure)?;
        let owner = match routing {
            Some(conversation_id) => self
                .workload
                .owner(account_id, conversation_id)
                .await
                .map_err(redis_failure)?,
            None => None,
        };
        Ok(agents
            .iter()
            .map(|agent| {
                let open = counts.get(&agent.id).copied().unwrap_or(0);
                let open = if owner == Some(agent.id) {
                    open.saturating_sub(1)
                } else {
                    open
                };
                AgentState {
                    id: agent.id,
                    team_ids: memberships
                        .iter()
                        .filter(|(_, members)| members.contains(&agent.id))
                        .map(|(team, _)| *team)
                        .collect(),
                    availability: availability(agent.availability_status),
                    open_conversations: open,
                }
            })
            .collect())
    }

    /// The token's own user id, read once (`GET /api/v1/profile`); `None` while Chatwoot
    /// cannot say (then it is asked again next time, and nobody is left out meanwhile).
    async fn own_user(&self, chatwoot: &ChatwootClient) -> Option<i64> {
        if let Some(id) = *self.own_user.lock().unwrap_or_else(|e| e.into_inner()) {
            return Some(id);
        }
        match chatwoot.profile().await {
            Ok(user) => {
                *self.own_user.lock().unwrap_or_else(|e| e.into_inner()) = Some(user.id);
                Some(user.id)
            }
            Err(error) => {
                tracing::debug!(%error, "cannot read the token's own user; routing to everyone");
                None
            }
        }
    }

    /// Chatwoot's members of the routing file's teams that list no agents (cached).
    async fn memberships(&self, chatwoot: &ChatwootClient) -> Result<Memberships, JobError> {
        if let Some((read_at, cached)) = self.lock_memberships().as_ref() {
            if read_at.elapsed() < MEMBERSHIP_CACHE_TTL {
                return Ok(cached.clone());
            }
        }
        let mut map = HashMap::new();
        for team in self.table.teams().filter(|t| t.agents.is_empty()) {
            match chatwoot.list_team_members(team.team.id).await {
                Ok(members) => {
                    map.insert(team.team.id, members.iter().map(|a| a.id).collect());
                }
                Err(error) if error.status() == Some(404) => {
                    tracing::warn!(team = team.team.id, name = %team.team.name,
                        "Chatwoot does not know this routing-file team; it has no members");
                    map.insert(team.team.id, Vec::new());
                }
                Err(error) => return Err(chatwoot_failure(error)),
            }
        }
        let map = Arc::new(map);
        *self.lock_memberships() = Some((Instant::now(), map.clone()));
        Ok(map)
    }

    fn forget_memberships(&self) {
        *self.lock_memberships() = None;
    }

    fn lock_memberships(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Memberships)>> {
        self.memberships.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn record_owner(
        &self,
        account_id: i64,
        conversation_id: i64,
        agent_id: i64,
    ) -> Result<(), JobError> {
        self.workload
            .set_owner(account_id, conversation_id, Some(agent_id))
            .await
            .map_err(redis_failure)?;
        Ok(())
    }

    async fn load_round_robin(&self, account_id: i64) -> Result<RoundRobin, JobError> {
        let mut conn = self.deps.queue.connection();
        let json: Option<String> = redis::cmd("GET")
            .arg(self.round_robin_key(account_id))
            .query_async(&mut conn)
            .await
            .map_err(redis_failure)?;
        Ok(match json {
            Some(json) => serde_json::from_str(&json).unwrap_or_else(|error| {
                tracing::warn!(%error, "unreadable round-robin cursors; starting over");
                RoundRobin::new()
            }),
            None => RoundRobin::new(),
        })
    }

    async fn save_round_robin(
        &self,
        account_id: i64,
        round_robin: &RoundRobin,
    ) -> Result<(), JobError> {
        let json = serde_json::to_string(round_robin)
            .context("serialising round-robin cursors")
            .map_err(JobError::Retryable)?;
        let mut conn = self.deps.queue.connection();
        let () = redis::cmd("SET")
            .arg(self.round_robin_key(account_id))
            .arg(json)
            .query_async(&mut conn)
            .await
            .map_err(redis_failure)?;
        Ok(())
    }

    async fn conversation(
        &self,
        chatwoot: &ChatwootClient,
        conversation_id: i64,
    ) -> Result<Conversation, JobError> {
        chatwoot
            .get_conversation(conversation_id)
            .await
            .map_err(chatwoot_failure)
    }

    fn is_vip(&self, conversation: &Conversation) -> bool {
        let empty = serde_json::Map::new();
        let contact = conversation
            .meta
            .sender
            .as_ref()
            .map_or(&empty, |s| &s.custom_attributes);
        self.table.is_vip(contact, &conversation.custom_attributes)
    }

    fn chatwoot(&self) -> Result<&ChatwootClient, JobError> {
        self.deps.chatwoot.as_deref().ok_or_else(|| {
            JobError::permanent(anyhow!(
                "the assigner needs the Chatwoot API: set CHATWOOT_BASE_URL, \
                 CHATWOOT_API_TOKEN and CHATWOOT_ACCOUNT_ID"
            ))
        })
    }
}

/// An agent assignment's answer as a result: Chatwoot answers `null` and *unassigns* the
/// conversation when it does not know the agent, which must never pass as success.
pub fn check_agent_outcome(
    outcome: &AssignOutcome,
    conversation_id: i64,
    agent_id: i64,
) -> Result<(), JobError> {
    match outcome {
        AssignOutcome::Agent(agent) if agent.id == agent_id => Ok(()),
        AssignOutcome::Agent(agent) => Err(JobError::retryable(anyhow!(
            "Chatwoot assigned conversation {conversation_id} to agent {} instead of {agent_id}",
            agent.id
        ))),
        AssignOutcome::Cleared | AssignOutcome::Team(_) => Err(JobError::retryable(anyhow!(
            "Chatwoot unassigned conversation {conversation_id} instead of assigning agent \
             {agent_id} (not an agent of the account any more?); agents are read again on retry"
        ))),
    }
}

/// The conversation's assignee, if Chatwoot shows them online.
fn online_assignee(conversation: &Conversation, agents: &[AgentState]) -> Option<i64> {
    let assignee = conversation.meta.assignee.as_ref()?.id;
    agents
        .iter()
        .any(|a| a.id == assignee && a.availability == Availability::Online)
        .then_some(assignee)
}

/// The text of the conversation's last customer message, from `conversation_show`.
fn last_customer_text(conversation: &Conversation) -> Option<String> {
    conversation
        .messages
        .iter()
        .rev()
        .find(|m| m.message_type == MessageType::Incoming && !m.private)
        .and_then(|m| m.content.clone())
        .filter(|t| !t.trim().is_empty())
}

fn availability(status: AvailabilityStatus) -> Availability {
    match status {
        AvailabilityStatus::Online => Availability::Online,
        AvailabilityStatus::Busy => Availability::Busy,
        AvailabilityStatus::Offline => Availability::Offline,
    }
}

fn redis_failure(error: redis::RedisError) -> JobError {
    JobError::Retryable(anyhow::Error::new(error).context("assigner state in Redis"))
}

fn waiting_failure(error: WaitingListError) -> JobError {
    JobError::Retryable(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: i64) -> copydesk::chatwoot::Agent {
        serde_json::from_value(serde_json::json!({"id": id, "availability_status": "online"}))
            .expect("an agent")
    }

    #[test]
    fn a_cleared_agent_assignment_is_a_retryable_error_not_a_success() {
        assert!(check_agent_outcome(&AssignOutcome::Agent(agent(7)), 1, 7).is_ok());
        assert!(matches!(
            check_agent_outcome(&AssignOutcome::Cleared, 1, 7),
            Err(JobError::Retryable(_))
        ));
        assert!(matches!(
            check_agent_outcome(&AssignOutcome::Agent(agent(8)), 1, 7),
            Err(JobError::Retryable(_))
        ));
    }

    #[test]
    fn the_escalation_note_names_operator_team_and_note() {
        assert_eq!(
            escalation_note("anna", "Managers", " refund over limit "),
            "Escalated by anna to Managers: refund over limit"
        );
        assert_eq!(
            escalation_note("anna", "Managers", ""),
            "Escalated by anna to Managers."
        );
        assert_eq!(escalation_note_key("1-2-3"), "copydesk-escalation:1-2-3");
    }

    #[test]
    fn the_poll_interval_comes_from_the_environment() {
        let mut env = std::collections::HashMap::new();
        assert_eq!(
            waiting_poll_from_env(&env).expect("default"),
            DEFAULT_WAITING_POLL
        );
        env.insert(WAITING_POLL_VAR.to_owned(), "250".to_owned());
        assert_eq!(
            waiting_poll_from_env(&env).expect("set"),
            Duration::from_millis(250)
        );
        env.insert(WAITING_POLL_VAR.to_owned(), "0".to_owned());
        assert!(waiting_poll_from_env(&env).is_err());
    }
}
