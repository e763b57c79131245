//! The Chatwoot Application API client, checked against Chatwoot v4.16.2's OpenAPI spec.
//!
//! - [`accounts`] holds [`ChatwootAccounts`], one client per configured account.
//! - [`client`] holds [`ChatwootClient`], one method per call.
//! - [`config`] holds [`ChatwootConfig`], the `CHATWOOT_*` variables.
//! - [`error`] holds [`ChatwootError`], classified retryable / permanent / ambiguous.
//! - [`types`] holds the request and response bodies.

pub mod accounts;
pub mod client;
pub mod config;
pub mod error;
pub mod types;

pub use accounts::{ChatwootAccounts, UnknownAccount};
pub use client::ChatwootClient;
pub use config::ChatwootConfig;
pub use error::ChatwootError;
pub use types::{
    Agent, AssignOutcome, Assignment, AvailabilityStatus, ContactSummary, Conversation,
    ConversationList, ConversationPriority, ConversationStatus, Message, MessageList, MessagePage,
    MessageType, NewMessage, StatusChange, Team, CONVERSATIONS_PER_PAGE,
};
