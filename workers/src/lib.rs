//! Copydesk workers.
//!
//! - [`cli`]: the `copydesk` command line and the role binaries' entry points.
//! - [`deadletter`]: automatic re-drive of dead letters, then parking.
//! - [`drafting`]: reply drafts with confidence, sources, action and priority.
//! - [`jobs`]: one handler per queue, run by the shared queue runner.
//! - [`knowledge`]: knowledge lookup (embedded tantivy index or an HTTP retriever).
//! - [`lifecycle`]: per-conversation state machine: episodes, FRT/TTR, SLA breaches, CSAT, auto-close.
//! - [`runtime`]: running roles (queue workers, health and metrics endpoints).
//! - [`routing`]: routing table and the assignment decision tree (team, agent, priority).

pub mod cli;
pub mod deadletter;
pub mod drafting;
pub mod jobs;
pub mod knowledge;
pub mod lifecycle;
pub mod reconcile;
pub mod routing;
pub mod runtime;
