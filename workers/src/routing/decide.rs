//! The routing decision tree as a pure function: [`decide`] takes the table, what we know about
//! the conversation and the agents, and a round-robin cursor, and says which team and agent
//! get the conversation at which priority, and why.
//!
//! Branches, first that fires wins:
//! 0. **Escalation**: an operator named a team (known to the table) → that team.
//! 1. **Safety**: the drafter flagged it, or a safety word is in the text → `Urgent`, the
//!    safety team; nobody available there → anyone online in any team.
//! 2. **VIP** → at least `High`, the senior operators team.
//! 3. **Intent**: the first intent (file order) that matches the text → its team.
//! 4. **Default** team.
//!
//! Within the team: online agents only (busy ones as a fallback when the table says so;
//! offline ones never); the fewest open conversations wins; ties take turns through
//! [`RoundRobin`]. Nobody available → [`RoutingDecision::Wait`], which the wiring keeps on a
//! waiting list and retries when an agent comes online, rather than leaving the
//! conversation silently unassigned.

use copydesk::domain::Priority;
use serde::{Deserialize, Serialize};

use super::file::BusyAgents;
use super::round_robin::{RoundRobin, ANY_TEAM_POOL};
use super::table::{RoutingTable, Team, TeamRef};

/// An agent's availability as Chatwoot reports it (`availability_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Available for new conversations.
    Online,
    /// Signed in but marked busy.
    Busy,
    /// Away.
    Offline,
}

impl std::str::FromStr for Availability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "online" => Ok(Self::Online),
            "busy" => Ok(Self::Busy),
            "offline" => Ok(Self::Offline),
            other => Err(format!(
                "unknown availability {other:?} (online, busy, offline)"
            )),
        }
    }
}

/// What the decision tree knows about one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    /// Chatwoot agent (user) id.
    pub id: i64,
    /// Chatwoot team ids the agent belongs to (in addition to the routing file's lists).
    #[serde(default)]
    pub team_ids: Vec<i64>,
    /// Current availability.
    pub availability: Availability,
    /// Open conversations assigned to the agent now.
    pub open_conversations: u32,
}

/// What the decision tree knows about the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingInput {
    /// The customer's text (intents and safety words match it).
    pub text: String,
    /// Priority the drafter suggested; `Normal` when `None`.
    pub priority: Option<Priority>,
    /// The contact or conversation is VIP (see [`RoutingTable::is_vip`]).
    pub vip: bool,
    /// The drafter found a safety issue (safety words in the text count too).
    pub safety: bool,
    /// An operator escalated to this team (a name from the routing file).
    pub escalation_team: Option<String>,
}

/// Which branch of the tree fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "branch", rename_all = "snake_case")]
pub enum RoutingReason {
    /// An operator escalated to a team.
    Escalation {
        /// The team's name.
        team: String,
    },
    /// A safety issue.
    Safety {
        /// The safety word found in the text; `None` when only the drafter's flag said so.
        matched: Option<String>,
    },
    /// A VIP contact or conversation.
    Vip,
    /// An intent matched.
    Intent {
        /// The intent's name.
        name: String,
    },
    /// Nothing else fired.
    Default,
}

impl RoutingReason {
    /// The branch's stable name (logs, metrics labels).
    pub fn branch(&self) -> &'static str {
        match self {
            Self::Escalation { .. } => "escalation",
            Self::Safety { .. } => "safety",
            Self::Vip => "vip",
            Self::Intent { .. } => "intent",
            Self::Default => "default",
        }
    }
}

impl std::fmt::Display for RoutingReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Escalation { team } => write!(f, "escalation to {team}"),
            Self::Safety {
                matched: Some(word),
            } => write!(f, "safety word {word:?}"),
            Self::Safety { matched: None } => f.write_str("safety issue flagged by the drafter"),
            Self::Vip => f.write_str("VIP"),
            Self::Intent { name } => write!(f, "intent {name}"),
            Self::Default => f.write_str("default team"),
        }
    }
}

/// How the agent was chosen within the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPick {
    /// How many agents shared the lowest workload (1: a clear winner; more: round robin).
    pub tied: usize,
    /// The agent's availability (`Busy` only as a fallback, see [`super::BusyAgents`]).
    pub availability: Availability,
    /// The agent is not in the team: a safety conversation fell back to anyone online.
    pub outside_team: bool,
}

/// The routing outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RoutingDecision {
    /// Assign the conversation to this team and agent and set this priority.
    Assign {
        /// The team.
        team: TeamRef,
        /// The agent.
        agent_id: i64,
        /// Priority to set in Chatwoot ([`Priority::chatwoot_value`]).
        priority: Priority,
        /// Which branch fired.
        reason: RoutingReason,
        /// How the agent was chosen.
        pick: AgentPick,
    },
    /// Nobody is available: assign the team, set the priority, and put the conversation on
    /// the waiting list to be retried when an agent comes online.
    Wait {
        /// The team.
        team: TeamRef,
        /// Priority to set in Chatwoot.
        priority: Priority,
        /// Which branch fired.
        reason: RoutingReason,
    },
}

impl RoutingDecision {
    /// The team.
    pub fn team(&self) -> &TeamRef {
        match self {
            Self::Assign { team, .. } | Self::Wait { team, .. } => team,
        }
    }

    /// The agent, when one was found.
    pub fn agent_id(&self) -> Option<i64> {
        match self {
            Self::Assign { agent_id, .. } => Some(*agent_id),
            Self::Wait { .. } => None,
        }
    }

    /// Priority to set in Chatwoot.
    pub fn priority(&self) -> Priority {
        match self {
            Self::Assign { priority, .. } | Self::Wait { priority, .. } => *priority,
        }
    }

    /// Which branch fired.
    pub fn reason(&self) -> &RoutingReason {
        match self {
            Self::Assign { reason, .. } | Self::Wait { reason, .. } => reason,
        }
    }
}

/// Routes one conversation. Pure apart from advancing `round_robin`'s cursor for the pool an
/// agent was picked from.
pub fn decide(
    table: &RoutingTable,
    input: &RoutingInput,
    agents: &[AgentState],
    round_robin: &mut RoundRobin,
) -> RoutingDecision {
    let hint = input.priority.unwrap_or(Priority::Normal);
    let safety_word = table.safety_match(&input.text).map(str::to_owned);
    let safety = input.safety || safety_word.is_some();
    // `Priority`'s order puts the most urgent first, so `min` means "the more urgent of".
    let floor = if safety {
        Priority::Urgent
    } else if input.vip {
        hint.min(Priority::High)
    } else {
        hint
    };

    let escalation = input
        .escalation_team
        .as_deref()
        .and_then(|name| table.team(name));
    let (team, priority, reason) = if let Some(team) = escalation {
        let reason = RoutingReason::Escalation {
            team: team.team.name.clone(),
        };
        (team, floor, reason)
    } else if safety {
        let reason = RoutingReason::Safety {
            matched: safety_word,
        };
        (&table.teams[table.safety_team], floor, reason)
    } else if input.vip {
        (&table.teams[table.senior_team], floor, RoutingReason::Vip)
    } else if let Some(intent) = table.intents.iter().find(|i| i.matches(&input.text)) {
        let reason = RoutingReason::Intent {
            name: intent.name.clone(),
        };
        (&table.teams[intent.team], floor, reason)
    } else {
        (
            &table.teams[table.default_team],
            floor,
            RoutingReason::Default,
        )
    };

    match choose_agent(table.busy_agents, team, agents, safety, round_robin) {
        Some((agent_id, pick)) => RoutingDecision::Assign {
            team: team.team.clone(),
            agent_id,
            priority,
            reason,
            pick,
        },
        None => RoutingDecision::Wait {
            team: team.team.clone(),
            priority,
            reason,
        },
    }
}

/// The agent for a team: online members, then (safety only) anyone online, then busy members,
/// then (safety only) anyone busy, as the busy policy allows.
fn choose_agent(
    busy: BusyAgents,
    team: &Team,
    agents: &[AgentState],
    anyone_may_help: bool,
    round_robin: &mut RoundRobin,
) -> Option<(i64, AgentPick)> {
    let in_team =
        |a: &&AgentState| team.agents.contains(&a.id) || a.team_ids.contains(&team.team.id);
    let mut tiers = vec![(Availability::Online, false)];
    if anyone_may_help {
        tiers.push((Availability::Online, true));
    }
    if busy == BusyAgents::Fallback {
        tiers.push((Availability::Busy, false));
        if anyone_may_help {
            tiers.push((Availability::Busy, true));
        }
    }
    for (availability, any_team) in tiers {
        let pool: Vec<&AgentState> = agents
            .iter()
            .filter(|a| a.availability == availability)
            .filter(|a| any_team || in_team(a))
            .collect();
        let Some(lowest) = pool.iter().map(|a| a.open_conversations).min() else {
            continue;
        };
        let mut tied: Vec<i64> = pool
            .iter()
            .filter(|a| a.open_conversations == lowest)
            .map(|a| a.id)
            .collect();
        tied.sort_unstable();
        tied.dedup();
        let key = if any_team {
            ANY_TEAM_POOL.to_owned()
        } else {
            RoundRobin::team_pool(team.team.id)
        };
        let agent_id = round_robin.next(&key, &tied)?;
        let outside_team = any_team && !agents.iter().filter(in_team).any(|a| a.id == agent_id);
        return Some((
            agent_id,
            AgentPick {
                tied: tied.len(),
                availability,
                outside_team,
            },
        ));
    }
    None
}
