//! Conversation lifecycle for `copydesk-lifecycle` (`track_conversation`): a per-conversation
//! state machine that measures first response and resolution times per episode, counts SLA
//! breaches, records CSAT answers and decides when a resolved conversation is closed. Pure
//! logic: the wiring loads a [`ConversationState`] from Redis, calls
//! [`ConversationState::apply`], stores it back, and acts on the returned
//! [`LifecycleEffect`]s (for example [`LifecycleEffect::record_metrics`]).
//!
//! - [`state`]: the state machine and [`auto_close_due`].
//! - [`effects`]: what a step returns.
//! - [`policy`]: SLA targets and the auto-close delay.
//!
//! # Definitions
//!
//! - **Episode**: starts with a customer message on a new conversation, or on a resolved (or
//!   closed) one, which reopens it; ends when the conversation is resolved. Each episode is
//!   measured on its own, so a reopened conversation does not inherit the old clock.
//! - **First response time (FRT)**: from the episode's first customer message to its first
//!   *public* reply, whether an agent typed it or an operator approved a Copydesk draft.
//!   Our drafts are private notes until approved: a draft waiting for approval is not a
//!   response and never stops the clock, so the time drafts spend unsent is not credited as
//!   responding; the clock stops only when the customer can read an answer.
//! - **Resolution time (TTR)**: from the episode's first customer message to the moment it is
//!   resolved. Time snoozed counts (the customer is still waiting).
//! - **SLA breach**: FRT or TTR above the target for the conversation's priority at that
//!   moment; counted once per episode and kind, either when the late reply or resolution
//!   happens or earlier by a sweep that sees the target already missed.
//!
//! # What "closed" means
//!
//! Chatwoot has no "closed" status: a conversation is open, pending, snoozed or resolved, and a
//! resolved one reopens as soon as the customer writes again. In Copydesk, **closed** means
//! *archived in Copydesk's own store*: a conversation that has stayed resolved for the
//! configured time (`COPYDESK_AUTO_CLOSE_AFTER_SECS`, 7 days by default) without being reopened
//! or snoozed is marked closed by the scheduled sweep, once. Closing changes nothing in
//! Chatwoot (the conversation stays resolved there and keeps its history); it ends
//! Copydesk's tracking: no more SLA clocks, and the conversation's state may be expired from
//! Redis. If the customer writes again later, Chatwoot reopens the conversation and Copydesk
//! treats it as a reopen that starts a new episode.

pub mod effects;
pub mod policy;
pub mod state;

#[cfg(test)]
mod tests;

pub use effects::{LifecycleEffect, SlaKind};
pub use policy::{LifecyclePolicy, AUTO_CLOSE_AFTER_VAR, DEFAULT_AUTO_CLOSE_AFTER};
pub use state::{auto_close_due, ConversationState, Csat, Episode, Status};
