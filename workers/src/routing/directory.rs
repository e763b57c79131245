//! The agent directory: what the decision tree knows about every agent of the account —
//! availability from Chatwoot (`GET .../agents`, read on every decision), teams from the
//! routing file's agent lists plus Chatwoot's memberships for the teams the file lists no
//! agents for (`GET .../teams/{id}/team_members`, cached for [`MEMBERSHIP_CACHE_TTL`]), and
//! open workload from the [`RoutingStore`]. Copydesk's own user (the API token's, from
//! `GET /api/v1/profile`, read once) is never routed to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use copydesk::chatwoot::{AvailabilityStatus, ChatwootClient, ChatwootError, Conversation};

use super::store::RoutingStore;
use super::{AgentState, Availability, RoutingTable};

/// How long team memberships read from Chatwoot are reused.
pub const MEMBERSHIP_CACHE_TTL: Duration = Duration::from_secs(60);

/// Team id → member agent ids, read from Chatwoot.
type Memberships = Arc<HashMap<i64, Vec<i64>>>;

/// Why the agents could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Chatwoot failed.
    #[error(transparent)]
    Chatwoot(#[from] ChatwootError),
    /// The workload records failed.
    #[error("workload records in Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The agent directory of one routing table, shared by the clones of a handler. Caches are
/// per Chatwoot account (each account has its own agents, teams and token user).
#[derive(Clone, Debug)]
pub struct AgentDirectory {
    table: Arc<RoutingTable>,
    memberships: Arc<Mutex<HashMap<i64, (Instant, Memberships)>>>,
    own_user: Arc<Mutex<HashMap<i64, i64>>>,
}

impl AgentDirectory {
    /// A directory for the teams of `table`.
    pub fn new(table: Arc<RoutingTable>) -> Self {
        Self {
            table,
            memberships: Arc::default(),
            own_user: Arc::default(),
        }
    }

    /// Every agent of the account with availability, teams and open workload (not counting
    /// conversation `routing` itself, which is being routed again).
    pub async fn agents(
        &self,
        chatwoot: &ChatwootClient,
        store: &RoutingStore,
        account_id: i64,
        routing: Option<i64>,
    ) -> Result<Vec<AgentState>, DirectoryError> {
        let own_user = self.own_user(chatwoot, account_id).await;
        let mut agents = chatwoot.list_agents().await?;
        // Copydesk's own user (the token's) answers as a bot, never as a human agent.
        agents.retain(|agent| Some(agent.id) != own_user);
        let memberships = self.memberships(chatwoot, account_id).await?;
        let ids: Vec<i64> = agents.iter().map(|a| a.id).collect();
        let counts = store.open_counts(account_id, &ids).await?;
        let owner = match routing {
            Some(conversation_id) => store.owner(account_id, conversation_id).await?,
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

    /// Drops the cached memberships (Chatwoot disagreed with them).
    pub fn forget_memberships(&self) {
        self.lock_memberships().clear();
    }

    /// The token's own user id, read once (`GET /api/v1/profile`); `None` while Chatwoot
    /// cannot say (then it is asked again next time, and nobody is left out meanwhile).
    async fn own_user(&self, chatwoot: &ChatwootClient, account_id: i64) -> Option<i64> {
        let known = self
            .own_user
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&account_id)
            .copied();
        if let Some(id) = known {
            return Some(id);
        }
        match chatwoot.profile().await {
            Ok(user) => {
                self.own_user
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(account_id, user.id);
                Some(user.id)
            }
            Err(error) => {
                tracing::debug!(%error, "cannot read the token's own user; routing to everyone");
                None
            }
        }
    }

    /// Chatwoot's members of the routing file's teams that list no agents (cached).
    async fn memberships(
        &self,
        chatwoot: &ChatwootClient,
        account_id: i64,
    ) -> Result<Memberships, ChatwootError> {
        if let Some((read_at, cached)) = self.lock_memberships().get(&account_id) {
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
                Err(error) => return Err(error),
            }
        }
        let map = Arc::new(map);
        self.lock_memberships()
            .insert(account_id, (Instant::now(), map.clone()));
        Ok(map)
    }

    fn lock_memberships(&self) -> MutexGuard<'_, HashMap<i64, (Instant, Memberships)>> {
        self.memberships.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The conversation's assignee, if Chatwoot shows them online.
pub fn online_assignee(conversation: &Conversation, agents: &[AgentState]) -> Option<i64> {
    let assignee = conversation.meta.assignee.as_ref()?.id;
    agents
        .iter()
        .any(|a| a.id == assignee && a.availability == Availability::Online)
        .then_some(assignee)
}

fn availability(status: AvailabilityStatus) -> Availability {
    match status {
        AvailabilityStatus::Online => Availability::Online,
        AvailabilityStatus::Busy => Availability::Busy,
        AvailabilityStatus::Offline => Availability::Offline,
    }
}
