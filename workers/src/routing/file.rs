//! The routing file as written: plain serde structs (teams, intents, safety words, VIP rules,
//! SLA minutes), validated into a [`RoutingTable`](super::RoutingTable) by
//! [`RoutingTable::from_file`](super::RoutingTable::from_file), and the SLA targets the
//! validated table keeps.

use std::time::Duration;

use copydesk::domain::Priority;
use serde::{Deserialize, Serialize};

/// The routing file as written: plain serde structs, validated by [`RoutingTable::from_file`](super::RoutingTable::from_file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingFile {
    /// Team that gets conversations no intent matched.
    pub default_team: String,
    /// Team of senior operators that gets VIP conversations.
    pub senior_team: String,
    /// Team that gets safety (urgent) conversations first.
    pub safety_team: String,
    /// What to do with agents Chatwoot reports as busy.
    #[serde(default)]
    pub busy_agents: BusyAgents,
    /// Safety words.
    #[serde(default)]
    pub safety: SafetySection,
    /// VIP rules.
    #[serde(default)]
    pub vip: VipSection,
    /// Teams, each with its Chatwoot id and agents.
    pub teams: Vec<TeamEntry>,
    /// Intents, tried in file order.
    #[serde(default)]
    pub intents: Vec<IntentEntry>,
    /// SLA targets.
    #[serde(default)]
    pub sla: SlaSection,
}

/// How the decision tree treats agents whose Chatwoot availability is `busy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusyAgents {
    /// Never assign to a busy agent.
    Skip,
    /// Assign to a busy agent only when nobody in the team is online.
    #[default]
    Fallback,
}

/// `[safety]`: words that make a conversation urgent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetySection {
    /// Words or phrases matched case-insensitively on word boundaries.
    #[serde(default)]
    pub words: Vec<String>,
}

/// `[vip]`: rules that flag a contact or conversation as VIP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipSection {
    /// Any matching rule makes the conversation VIP.
    #[serde(default)]
    pub rules: Vec<VipRule>,
}

/// Where a VIP rule looks for its custom attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeScope {
    /// The contact's custom attributes.
    Contact,
    /// The conversation's custom attributes.
    Conversation,
    /// Either.
    #[default]
    Any,
}

/// One VIP rule: a custom attribute and the values that mean VIP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipRule {
    /// Custom attribute name (Chatwoot's attribute key).
    pub attribute: String,
    /// Where to look.
    #[serde(default)]
    pub scope: AttributeScope,
    /// Values (compared case-insensitively with the attribute rendered as text; `true`
    /// matches a boolean `true`, `1` a number 1).
    pub values: Vec<String>,
}

/// `[[teams]]`: one Chatwoot team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamEntry {
    /// Name used everywhere else in the file and by operators' escalations.
    pub name: String,
    /// Chatwoot team id.
    pub id: i64,
    /// Chatwoot agent (user) ids in the team; agents whose Chatwoot team membership names
    /// this team count too.
    #[serde(default)]
    pub agents: Vec<i64>,
}

/// `[[intents]]`: words or patterns in the customer's text that route to a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentEntry {
    /// Intent name (logs and tests).
    pub name: String,
    /// Team that handles it.
    pub team: String,
    /// Words or phrases matched case-insensitively on word boundaries.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Regular expressions (Rust `regex` syntax), matched case-insensitively.
    #[serde(default)]
    pub regexes: Vec<String>,
}

/// `[sla]`: targets per priority, in minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSection {
    /// First response targets.
    #[serde(default = "PriorityMinutes::first_response_defaults")]
    pub first_response_minutes: PriorityMinutes,
    /// Resolution targets.
    #[serde(default = "PriorityMinutes::resolution_defaults")]
    pub resolution_minutes: PriorityMinutes,
}

impl Default for SlaSection {
    fn default() -> Self {
        Self {
            first_response_minutes: PriorityMinutes::first_response_defaults(),
            resolution_minutes: PriorityMinutes::resolution_defaults(),
        }
    }
}

/// Largest SLA target a routing file may set: a year, far below what overflows as seconds or
/// as a deadline added to a timestamp.
pub const MAX_SLA_MINUTES: u64 = 366 * 24 * 60;

/// One number of minutes per priority. A missing priority is an error, so a partial table
/// never silently mixes defaults in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityMinutes {
    /// Urgent.
    pub urgent: u64,
    /// High.
    pub high: u64,
    /// Normal.
    pub normal: u64,
    /// Low.
    pub low: u64,
}

impl PriorityMinutes {
    /// Default first response targets: 5, 15, 30, 60 minutes.
    pub const fn first_response_defaults() -> Self {
        Self {
            urgent: 5,
            high: 15,
            normal: 30,
            low: 60,
        }
    }

    /// Default resolution targets: 4, 8, 24, 48 hours.
    pub const fn resolution_defaults() -> Self {
        Self {
            urgent: 4 * 60,
            high: 8 * 60,
            normal: 24 * 60,
            low: 48 * 60,
        }
    }

    /// The minutes for one priority.
    pub fn get(&self, priority: Priority) -> u64 {
        match priority {
            Priority::Urgent => self.urgent,
            Priority::High => self.high,
            Priority::Normal => self.normal,
            Priority::Low => self.low,
        }
    }
}

/// SLA targets per priority, as durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaTargets {
    first_response: PriorityMinutes,
    resolution: PriorityMinutes,
}

impl Default for SlaTargets {
    fn default() -> Self {
        Self::new(
            PriorityMinutes::first_response_defaults(),
            PriorityMinutes::resolution_defaults(),
        )
    }
}

impl SlaTargets {
    /// Targets from minutes per priority.
    pub const fn new(first_response: PriorityMinutes, resolution: PriorityMinutes) -> Self {
        Self {
            first_response,
            resolution,
        }
    }

    /// Longest acceptable first response for a priority.
    pub fn first_response(&self, priority: Priority) -> Duration {
        Duration::from_secs(self.first_response.get(priority).saturating_mul(60))
    }

    /// Longest acceptable resolution time for a priority.
    pub fn resolution(&self, priority: Priority) -> Duration {
        Duration::from_secs(self.resolution.get(priority).saturating_mul(60))
    }
}
