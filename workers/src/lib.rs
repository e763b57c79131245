//! Copydesk workers.
//!
//! - [`drafting`]: reply drafts with confidence, sources, action and priority.
//! - [`knowledge`]: knowledge lookup (embedded tantivy index or an HTTP retriever).

pub mod drafting;
pub mod knowledge;
