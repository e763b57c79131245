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
//!   lists no agents for (cached for [`MEMBERSHIP_CACHE_TTL`](crate::routing::directory::MEMBERSHIP_CACHE_TTL));
//! - open workload per agent is ours ([`crate::routing::store`]): Chatwoot's API has no per-agent
//!   open count, so we count what we assign, and the lifecycle stage moves or releases it;
//! - round-robin cursors are one JSON [`RoundRobin`](crate::routing::round_robin::RoundRobin) per account at
//!   `routing:{account}:round_robin`, so replicas take turns together;
//! - conversations nobody can take now wait on [`crate::routing::waiting_list`]: they get the team
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

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use copydesk::chatwoot::{
    AssignOutcome, ChatwootClient, Conversation, ConversationStatus, MessageType, NewMessage,
};
use copydesk::config::{millis_or, ConfigError, EnvSource};
use copydesk::domain::Priority;
use copydesk::jobs::{AssignConversation, AssignReason};
use copydesk::queue::{JobAttempt, JobError};
use tokio_util::sync::CancellationToken;

use super::kind::{Background, JobHandler, Kind, Role, Setup};
mod apply;

use super::post_once::{PostOnce, Posted, Step};
use super::{chatwoot_failure, store_failure, Deps};
use crate::routing::waiting_list::{WaitingList, WaitingListError};
use crate::routing::{
    AgentDirectory, AgentState, DirectoryError, RoutingInput, RoutingReason, RoutingStore,
    RoutingTable, TeamRef,
};

/// The variable that lets Copydesk hand a conversation over from an agent bot: `1` → a
/// conversation `pending` with the bot is opened (`toggle_status` → `open`) and assigned;
/// unset/`0` (default) → it is left to the bot (drafted, never opened or assigned).
pub const BOT_HANDOFF_VAR: &str = "COPYDESK_BOT_HANDOFF";

/// `COPYDESK_BOT_HANDOFF` (default off).
pub fn bot_handoff_from_env(env: &dyn EnvSource) -> Result<bool, ConfigError> {
    match copydesk::config::parsed_or(env, BOT_HANDOFF_VAR, 0u8)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(ConfigError::Invalid {
            var: BOT_HANDOFF_VAR,
            value: other.to_string(),
            reason: "expected 0 or 1".into(),
        }),
    }
}

/// What a [`Routed::Skipped`] says about a conversation pending with an agent bot.
pub const PENDING_WITH_BOT: &str = "conversation is pending with the agent bot";

/// The variable holding the waiting-list poll interval in milliseconds.
pub const WAITING_POLL_VAR: &str = "COPYDESK_WAITING_POLL_MS";

/// Default waiting-list poll interval.
pub const DEFAULT_WAITING_POLL: Duration = Duration::from_secs(15);

/// Waiting conversations looked at per pass (most urgent, then oldest, first).
pub const WAITING_BATCH: usize = 50;

/// How long one replica may hold the waiting-list pass lock (a pass normally takes far less;
/// the lock only keeps two replicas from assigning the same conversation twice).
const PASS_LOCK_TTL: Duration = Duration::from_secs(60);

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

impl Kind for AssignConversation {
    const ROLE: Role = Role::ASSIGNER;
    const CALLS_CHATWOOT: bool = true;
    type Handler = Handler;
    fn handler(setup: &Setup<'_>) -> anyhow::Result<Handler> {
        let poll = waiting_poll_from_env(setup.env)?;
        Ok(Handler::new(setup.deps.clone(), setup.routing()?)
            .with_waiting_poll(poll)
            .with_bot_handoff(bot_handoff_from_env(setup.env)?))
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
    workload: RoutingStore,
    waiting: WaitingList,
    directory: AgentDirectory,
    waiting_poll: Duration,
    bot_handoff: bool,
}

impl Handler {
    /// A stage routing with `table`.
    pub fn new(deps: Deps, table: Arc<RoutingTable>) -> Self {
        let conn = deps.queue.connection();
        let keys = deps.queue.keys().clone();
        Self {
            workload: RoutingStore::new(conn.clone(), keys.clone()),
            waiting: WaitingList::new(conn, keys),
            directory: AgentDirectory::new(table.clone()),
            deps,
            table,
            waiting_poll: DEFAULT_WAITING_POLL,
            bot_handoff: false,
        }
    }

    /// The same handler handing conversations over from an agent bot when `handoff`
    /// (`COPYDESK_BOT_HANDOFF=1`): a `pending` conversation is opened, then assigned. By
    /// default a `pending` conversation is the bot's: never opened, never assigned.
    pub fn with_bot_handoff(mut self, handoff: bool) -> Self {
        self.bot_handoff = handoff;
        self
    }

    /// Whether to leave `conversation` alone because it is pending with an agent bot; with
    /// hand-off on, opens it instead (Chatwoot's own bot hand-off is `pending` → `open`).
    async fn leave_to_bot(
        &self,
        chatwoot: &ChatwootClient,
        conversation: &mut Conversation,
    ) -> Result<bool, JobError> {
        if conversation.status != ConversationStatus::Pending {
            return Ok(false);
        }
        if !self.bot_handoff {
            tracing::info!(
                conversation = conversation.id,
                "conversation is pending with the agent bot: not opened, not assigned \
                 (COPYDESK_BOT_HANDOFF=1 hands it over)"
            );
            return Ok(true);
        }
        chatwoot
            .toggle_status(conversation.id, ConversationStatus::Open, None)
            .await
            .map_err(chatwoot_failure)?;
        conversation.status = ConversationStatus::Open;
        tracing::info!(
            conversation = conversation.id,
            "conversation handed over from the agent bot (pending → open)"
        );
        Ok(false)
    }

    /// The same handler polling the waiting list every `poll` (instead of
    /// [`DEFAULT_WAITING_POLL`]; the role reads `COPYDESK_WAITING_POLL_MS` at start).
    pub fn with_waiting_poll(mut self, poll: Duration) -> Self {
        self.waiting_poll = poll;
        self
    }

    /// The open-workload records.
    pub fn workload(&self) -> &RoutingStore {
        &self.workload
    }

    /// The waiting list.
    pub fn waiting_list(&self) -> &WaitingList {
        &self.waiting
    }

    /// The Redis key of an account's round-robin cursors (JSON [`RoundRobin`](crate::routing::round_robin::RoundRobin)).
    pub fn round_robin_key(&self, account_id: i64) -> String {
        self.workload.round_robin_key(account_id)
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
        // The job's own account, with its own token; an unconfigured one is a permanent error.
        let account_id = job.account_id.get();
        let chatwoot = self.deps.chatwoot_for(account_id)?;
        let conversation_id = job.conversation_id.get();
        match &job.reason {
            AssignReason::AgentOnline => {
                let pass = self.assign_waiting_in(job.account_id.get()).await?;
                tracing::info!(assigned = pass.assigned, "agent online: waiting-list pass");
                Ok(Routed::Skipped("waiting-list pass"))
            }
            AssignReason::NewConversation { first_message } => {
                let mut conversation = self.conversation(chatwoot, conversation_id).await?;
                if conversation.status == ConversationStatus::Resolved {
                    return Ok(Routed::Skipped("conversation is resolved"));
                }
                if self.leave_to_bot(chatwoot, &mut conversation).await? {
                    return Ok(Routed::Skipped(PENDING_WITH_BOT));
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
                self.route(chatwoot, account_id, &conversation, input, true)
                    .await
            }
            AssignReason::Drafted {
                approval_id,
                priority,
                text,
                vip,
            } => {
                let mut conversation = self.conversation(chatwoot, conversation_id).await?;
                if conversation.status == ConversationStatus::Resolved {
                    return Ok(Routed::Skipped("conversation is resolved"));
                }
                if self.leave_to_bot(chatwoot, &mut conversation).await? {
                    return Ok(Routed::Skipped(PENDING_WITH_BOT));
                }
                let safety = self
                    .deps
                    .approvals
                    .get(approval_id.as_str())
                    .await
                    .map_err(store_failure)?
                    .is_some_and(|item| item.doc.safety);
                let input = RoutingInput {
                    text: text.clone(),
                    priority: Some(*priority),
                    vip: *vip || self.is_vip(&conversation),
                    safety,
                    escalation_team: None,
                };
                let routed = self
                    .route(chatwoot, account_id, &conversation, input, true)
                    .await?;
                self.record_team(approval_id.as_str(), &routed, &conversation)
                    .await;
                Ok(routed)
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
                let mut conversation = self.conversation(chatwoot, conversation_id).await?;
                let doc = self
                    .deps
                    .approvals
                    .get(approval_id.as_str())
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
                // With the bot, the operator's note is still posted; the hand-over is not.
                let routed = if self.leave_to_bot(chatwoot, &mut conversation).await? {
                    Routed::Skipped(PENDING_WITH_BOT)
                } else {
                    self.route(chatwoot, account_id, &conversation, input, false)
                        .await?
                };
                self.post_escalation_note(
                    chatwoot,
                    account_id,
                    conversation_id,
                    approval_id.as_str(),
                    &escalation_note(operator, &team_name, note),
                    after_id,
                )
                .await?;
                Ok(routed)
            }
        }
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

    /// The agents as the tree sees them (not counting `routing`'s own workload).
    async fn agent_states(
        &self,
        chatwoot: &ChatwootClient,
        account_id: i64,
        routing: Option<i64>,
    ) -> Result<Vec<AgentState>, JobError> {
        self.directory
            .agents(chatwoot, &self.workload, account_id, routing)
            .await
            .map_err(|error| match error {
                DirectoryError::Chatwoot(error) => chatwoot_failure(error),
                DirectoryError::Redis(error) => redis_failure(error),
            })
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

    /// The accounts the assigner serves (those with a Chatwoot client).
    fn account_ids(&self) -> Result<Vec<i64>, JobError> {
        self.deps
            .chatwoot
            .as_deref()
            .map(|accounts| accounts.account_ids())
            .ok_or_else(|| {
                JobError::permanent(anyhow!(
                    "the assigner needs the Chatwoot API: set CHATWOOT_BASE_URL and \
                     COPYDESK_ACCOUNTS_FILE (or CHATWOOT_API_TOKEN and CHATWOOT_ACCOUNT_ID)"
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

fn redis_failure(error: redis::RedisError) -> JobError {
    JobError::Retryable(anyhow::Error::new(error).context("assigner state in Redis"))
}

fn waiting_failure(error: WaitingListError) -> JobError {
    JobError::Retryable(error.into())
}

#[cfg(test)]
mod tests;
