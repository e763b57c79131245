//! Conversation routing for `copydesk-assigner`: the routing table (teams, intents, safety
//! words, VIP rules, SLA targets) and the pure decision tree that picks a team, an agent and a
//! priority. No I/O beyond reading the routing file: the wiring fetches agents from Chatwoot,
//! keeps the [`RoundRobin`] cursors and the waiting list in Redis, and applies the decision.
//!
//! - [`file`](mod@file): the TOML routing file as written, and the SLA targets.
//! - [`table`]: the validated routing table.
//! - [`decide`](mod@decide): the decision tree.
//! - [`round_robin`]: turn-taking among agents with equal workload.
//! - [`store`]: [`RoutingStore`], open workload per agent and the round-robin cursors in Redis.
//! - [`directory`]: [`AgentDirectory`], the agents with availability, teams and workload.
//! - [`waiting_list`]: conversations waiting for an agent.

pub mod decide;
pub mod directory;
pub mod file;
pub mod round_robin;
pub mod store;
pub mod table;
pub mod waiting_list;

#[cfg(test)]
mod tests;

pub use decide::{
    decide, AgentPick, AgentState, Availability, RoutingDecision, RoutingInput, RoutingReason,
};
pub use directory::{online_assignee, AgentDirectory, DirectoryError};
pub use file::{BusyAgents, PriorityMinutes, RoutingFile, SlaTargets};
pub use round_robin::RoundRobin;
pub use store::RoutingStore;
pub use table::{
    RoutingError, RoutingTable, Team, TeamRef, DEFAULT_ROUTING_TOML, ROUTING_FILE_VAR,
};
