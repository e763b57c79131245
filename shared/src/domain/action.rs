//! What the drafter recommends the operator do with a draft.

use serde::{Deserialize, Serialize};

/// What the drafter recommends the operator do with a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Confident answer: approve as is.
    Send,
    /// Plausible answer: read before sending.
    Review,
    /// Out of our depth or unsafe: a human (team) takes over.
    Escalate,
}

impl Action {
    /// Stable lower-case name (also the metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Review => "review",
            Self::Escalate => "escalate",
        }
    }
}
