//! Applying routing decisions in Chatwoot for the `assign_conversation` handler: the team,
//! the agent, the priority (only ever raised), and what Copydesk records (workload, cursors,
//! waiting list); and the waiting-list pass that gives waiting conversations an agent.

use anyhow::anyhow;
use copydesk::chatwoot::{
    AssignOutcome, Assignment, ChatwootClient, Conversation, ConversationStatus,
};
use copydesk::domain::{now_ms, Priority};
use copydesk::queue::JobError;

use super::{
    check_agent_outcome, redis_failure, waiting_failure, Handler, Routed, WaitingPass,
    PASS_LOCK_TTL, WAITING_BATCH,
};
use crate::jobs::chatwoot_failure;
use crate::routing::waiting_list::WaitingEntry;
use crate::routing::{
    decide, online_assignee, Availability, BusyAgents, RoundRobin, RoutingDecision, RoutingInput,
    TeamRef,
};

impl Handler {
    /// Records on the approval item the team the drafted conversation went to (the routed
    /// team, or the team it already had in Chatwoot when its assignee kept it), for the
    /// console's queue. Best effort: the assignment is done whether or not this is stored.
    pub(super) async fn record_team(
        &self,
        approval_id: &str,
        routed: &Routed,
        conversation: &Conversation,
    ) {
        let team = match routed {
            Routed::Assigned { team, .. } | Routed::Waiting { team, .. } => {
                Some(team.name.as_str())
            }
            Routed::Kept { .. } => conversation
                .meta
                .team
                .as_ref()
                .map(|t| t.name.as_str())
                .filter(|n| !n.trim().is_empty()),
            Routed::Skipped(_) => None,
        };
        let Some(team) = team else { return };
        let mut conn = self.deps.queue.connection();
        if let Err(error) = copydesk::approval_facts::record_team(
            &mut conn,
            self.deps.queue.keys(),
            approval_id,
            team,
        )
        .await
        {
            tracing::warn!(approval = %approval_id, %error, "team not recorded on the approval item");
        }
    }

    /// One pass over the waiting list of every account the assigner serves (see
    /// [`Self::assign_waiting_in`]); the counts are summed.
    pub async fn assign_waiting(&self) -> Result<WaitingPass, JobError> {
        let mut total = WaitingPass::default();
        for account_id in self.account_ids()? {
            let pass = self.assign_waiting_in(account_id).await?;
            total.assigned += pass.assigned;
            total.dropped += pass.dropped;
            total.still_waiting += pass.still_waiting;
        }
        Ok(total)
    }

    /// One pass over `account_id`'s waiting list: every waiting conversation (up to
    /// [`WAITING_BATCH`], most urgent and oldest first) that an online agent can take now
    /// gets one, through that account's client. Only one replica runs a pass at a time; the
    /// others return an empty pass.
    pub async fn assign_waiting_in(&self, account_id: i64) -> Result<WaitingPass, JobError> {
        let chatwoot = self.deps.chatwoot_for(account_id)?;
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

    pub(super) async fn assign_waiting_locked(
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
            let mut conversation = conversation;
            if self.leave_to_bot(chatwoot, &mut conversation).await? {
                // Back with the agent bot: it waits until it is open again (or handed off).
                pass.still_waiting += 1;
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
    pub(super) async fn route(
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
    pub(super) async fn apply(
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
                        self.directory.forget_memberships();
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
    pub(super) async fn assign_team(
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
    pub(super) async fn raise_priority(
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

    pub(super) async fn record_owner(
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

    pub(super) async fn load_round_robin(&self, account_id: i64) -> Result<RoundRobin, JobError> {
        self.workload
            .round_robin(account_id)
            .await
            .map_err(redis_failure)
    }

    pub(super) async fn save_round_robin(
        &self,
        account_id: i64,
        round_robin: &RoundRobin,
    ) -> Result<(), JobError> {
        self.workload
            .save_round_robin(account_id, round_robin)
            .await
            .map_err(redis_failure)
    }
}
