//! Copydesk workers.
//!
//! - [`drafting`]: reply drafts with confidence, sources, action and priority.
//! - [`knowledge`]: knowledge lookup (embedded tantivy index or an HTTP retriever).
//! - [`lifecycle`]: per-conversation state machine: episodes, FRT/TTR, SLA breaches, CSAT, auto-close.
//! - [`routing`]: routing table and the assignment decision tree (team, agent, priority).

pub mod drafting;
pub mod knowledge;
pub mod lifecycle;
pub mod routing;
