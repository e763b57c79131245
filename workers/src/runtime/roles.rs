//! The worker roles: names, binaries and queues.

use copydesk::jobs::{
    AssignConversation, GenerateDraft, Job, LookupKnowledge, PostNote, SendReply, TrackConversation,
};

/// A worker role: what one `copydesk-<role>` binary runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `lookup_knowledge`.
    Knowledge,
    /// `generate_draft`.
    Drafter,
    /// `post_note` and `send_reply`.
    Notes,
    /// `assign_conversation`.
    Assigner,
    /// `track_conversation`.
    Lifecycle,
    /// Dead-letter re-drive.
    Deadletter,
}

/// A role name that is not one.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: expected one of knowledge, drafter, notes, assigner, lifecycle, deadletter")]
pub struct UnknownRole(pub String);

impl Role {
    /// Every role, in pipeline order.
    pub const ALL: [Role; 6] = [
        Role::Knowledge,
        Role::Drafter,
        Role::Notes,
        Role::Assigner,
        Role::Lifecycle,
        Role::Deadletter,
    ];

    /// The role's name (`copydesk-<name>` is its binary).
    pub fn name(self) -> &'static str {
        match self {
            Self::Knowledge => "knowledge",
            Self::Drafter => "drafter",
            Self::Notes => "notes",
            Self::Assigner => "assigner",
            Self::Lifecycle => "lifecycle",
            Self::Deadletter => "deadletter",
        }
    }

    /// The queues the role consumes.
    pub fn queues(self) -> &'static [&'static str] {
        match self {
            Self::Knowledge => &[LookupKnowledge::QUEUE],
            Self::Drafter => &[GenerateDraft::QUEUE],
            Self::Notes => &[PostNote::QUEUE, SendReply::QUEUE],
            Self::Assigner => &[AssignConversation::QUEUE],
            Self::Lifecycle => &[TrackConversation::QUEUE],
            Self::Deadletter => &[],
        }
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}
