//! How urgent a conversation is, in Copydesk's words (`normal` is Chatwoot's `medium`).

use serde::{Deserialize, Serialize};

/// How urgent a conversation is. Order matters: urgent sorts first.
///
/// On the wire (job payloads, stored drafts) it is the lower-case name: `"urgent"`, `"high"`,
/// `"normal"`, `"low"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Safety issue: someone looks now.
    Urgent,
    /// VIP or upset customer.
    High,
    /// The default.
    Normal,
    /// Can wait: thanks, acknowledgements, "no rush" (a plain question is `Normal`).
    Low,
}

impl Priority {
    /// Every priority, most pressing first.
    pub const ALL: [Self; 4] = [Self::Urgent, Self::High, Self::Normal, Self::Low];

    /// Stable lower-case name (also the metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Urgent => "urgent",
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }

    /// Chatwoot's priority value (`toggle_priority` accepts urgent|high|medium|low).
    pub fn chatwoot_value(self) -> &'static str {
        match self {
            Self::Urgent => "urgent",
            Self::High => "high",
            Self::Normal => "medium",
            Self::Low => "low",
        }
    }

    /// Sort rank: 0 for urgent, 3 for low.
    pub(crate) fn rank(self) -> u64 {
        self as u64
    }
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Priority {
    type Err = String;
    /// Case-insensitive; Chatwoot's `medium` reads as [`Priority::Normal`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "urgent" => Ok(Self::Urgent),
            "high" => Ok(Self::High),
            "normal" | "medium" => Ok(Self::Normal),
            "low" => Ok(Self::Low),
            other => Err(format!(
                "unknown priority {other:?} (urgent, high, normal, low)"
            )),
        }
    }
}
