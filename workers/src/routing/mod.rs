//! Conversation routing for `copydesk-assigner`: the routing table (teams, intents, safety
//! words, VIP rules, SLA targets) and the pure decision tree that picks a team, an agent and a
//! priority. No I/O beyond reading the routing file: the wiring fetches agents from Chatwoot,
//! keeps the [`RoundRobin`] cursors and the waiting list in Redis, and applies the decision.
//!
//! - [`table`]: the TOML routing file and its validation.
//! - [`decide`](mod@decide): the decision tree.
//! - [`round_robin`]: turn-taking among agents with equal workload.

pub mod decide;
pub mod round_robin;
pub mod table;

#[cfg(test)]
mod tests;

pub use decide::{
    decide, AgentPick, AgentState, Availability, RoutingDecision, RoutingInput, RoutingReason,
};
pub use round_robin::RoundRobin;
pub use table::{
    BusyAgents, PriorityMinutes, RoutingError, RoutingFile, RoutingTable, SlaTargets, Team,
    TeamRef, DEFAULT_ROUTING_TOML, ROUTING_FILE_VAR,
};
