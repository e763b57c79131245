//! Agents, teams and assignments.

use serde::{Deserialize, Serialize};

use super::null_as_default;

/// An agent's effective availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AvailabilityStatus {
    /// Takes conversations.
    Online,
    /// Present but not taking new work.
    Busy,
    /// Away. Unknown values read as offline, the safe choice for routing.
    #[default]
    #[serde(other)]
    Offline,
}

impl AvailabilityStatus {
    /// Chatwoot's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Busy => "busy",
            Self::Offline => "offline",
        }
    }
}

/// An agent (the spec's `agent` schema): `GET .../agents`, team members, assignees.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Agent {
    /// User id.
    pub id: i64,
    /// Account id.
    #[serde(default)]
    pub account_id: Option<i64>,
    /// Full name.
    #[serde(default)]
    pub name: String,
    /// Display name.
    #[serde(default)]
    pub available_name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// `agent` or `administrator`.
    #[serde(default)]
    pub role: Option<String>,
    /// Effective availability (missing reads as offline).
    #[serde(default, deserialize_with = "null_as_default")]
    pub availability_status: AvailabilityStatus,
    /// Marked offline automatically when away.
    #[serde(default)]
    pub auto_offline: Option<bool>,
    /// Email confirmed.
    #[serde(default)]
    pub confirmed: Option<bool>,
}

/// A team (the spec's `team` schema).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Team {
    /// Team id.
    pub id: i64,
    /// Name, e.g. "Order Support".
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Chatwoot auto-assigns within the team when a conversation is assigned to it.
    #[serde(default)]
    pub allow_auto_assign: bool,
    /// Account id.
    #[serde(default)]
    pub account_id: Option<i64>,
    /// Whether the token's user is a member.
    #[serde(default)]
    pub is_member: Option<bool>,
}

/// What to assign a conversation to (`POST .../assignments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// An agent. Chatwoot silently *unassigns* when the id is not an agent of the account.
    Agent(i64),
    /// A team. Chatwoot clears the team when the id is unknown, and drops the assignee when
    /// they are not a member of the new team.
    Team(i64),
    /// No agent (`{"assignee_id": null}`).
    Unassign,
}

impl Assignment {
    pub(crate) fn body(self) -> serde_json::Value {
        match self {
            Self::Agent(id) => serde_json::json!({ "assignee_id": id }),
            Self::Team(id) => serde_json::json!({ "team_id": id }),
            Self::Unassign => serde_json::json!({ "assignee_id": null }),
        }
    }
}

/// What a conversation is assigned to after `POST .../assignments`.
#[derive(Debug, Clone, PartialEq)]
pub enum AssignOutcome {
    /// This agent (Chatwoot answers with the agent).
    Agent(Agent),
    /// This team (Chatwoot answers with the team).
    Team(Team),
    /// Nothing: Chatwoot answered `null` (unknown or `null` id).
    Cleared,
}
