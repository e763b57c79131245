//! Copydesk's domain vocabulary, shared by the job payloads, the Chatwoot client and the
//! approval store (none of which imports another for it).
//!
//! - [`ids`]: typed ids ([`AccountId`], [`ConversationId`], [`MessageId`], [`ApprovalId`],
//!   [`DeliveryId`]), built by parsing, transparent on the wire.
//! - [`priority`]: how urgent a conversation is ([`Priority`]).
//! - [`action`]: what the drafter recommends ([`Action`]).
//! - [`reported`]: status and priority as a Chatwoot webhook reported them
//!   ([`ReportedStatus`], [`ReportedPriority`]), tolerant of values Copydesk does not know.
//! - [`clock`]: the process clock ([`now_ms`]).

pub mod action;
pub mod clock;
pub mod ids;
pub mod priority;
pub mod reported;

pub use action::Action;
pub use clock::now_ms;
pub use ids::{AccountId, ApprovalId, ConversationId, DeliveryId, IdError, MessageId};
pub use priority::Priority;
pub use reported::{ReportedPriority, ReportedStatus};
