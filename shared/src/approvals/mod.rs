//! The approval store: every draft waits here for an operator (approve / edit / reject /
//! escalate), ordered by priority then age.
//!
//! Redis layout (under the queue prefix):
//! - `approval:{id}`: a hash with `doc` (the immutable draft, JSON), `status`, `decision`
//!   (JSON, once decided), `note_id`, `note_posted_at_ms`, `reply_message_id`, `updated_at_ms`.
//! - `approvals:pending`: sorted set of pending ids, score = priority rank × 10¹³ + created ms,
//!   so `ZRANGE` yields urgent first, then oldest first.
//! - `approvals:all`: sorted set of every id by creation time (listing by status, newest first).
//! - `conversation:{account}:{conversation}:draft`: the id of the conversation's newest draft
//!   (one draft in flight per conversation; an older one is superseded).
//!
//! Status changes are Lua scripts that check the current status first, so two operators
//! deciding at once get one success and one conflict.
//!
//! - [`item`]: the stored document ([`DraftDoc`], [`ApprovalItem`], [`ApprovalStatus`],
//!   [`Decision`]).
//! - [`store`]: [`ApprovalStore`], the Redis handle, and what its calls return.

pub mod item;
mod scripts;
pub mod store;

/// Re-exported from [`crate::domain`], where they live, for existing callers.
pub use crate::domain::{now_ms, Action, Priority};
pub use item::{
    ApprovalItem, ApprovalStatus, Decision, DecisionRecord, DraftDoc, SourceRef,
    MAX_CUSTOMER_TEXT_CHARS,
};
pub use store::{ApprovalError, ApprovalStore, CreateOutcome, DecideOutcome};
