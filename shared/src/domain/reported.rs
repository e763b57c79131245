//! A conversation's status and priority as a Chatwoot webhook reported them.
//!
//! Both travel in job payloads as Chatwoot's lower-case strings (`"open"`, `"medium"` …).
//! A value Copydesk does not know is kept verbatim in an `Other` variant instead of failing:
//! a newer Chatwoot adding a status must not make a queued job undecodable, and re-encoding
//! writes back exactly the string that was read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! reported_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A value Copydesk does not know, kept verbatim (never an error, so jobs carrying
            /// it still decode and re-encode to the same JSON).
            Other(String),
        }

        impl $name {
            /// Chatwoot's name for it (the verbatim text for `Other`).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(other) => other,
                }
            }

            /// The variant for Chatwoot's exact (lower-case) name, else `Other`.
            pub fn from_name(name: &str) -> Self {
                match name {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(name: &str) -> Self {
                Self::from_name(name)
            }
        }

        impl From<String> for $name {
            fn from(name: String) -> Self {
                Self::from_name(&name)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok(Self::from_name(&name))
            }
        }
    };
}

reported_enum!(
    /// A conversation's status as Chatwoot reported it: `open`, `pending`, `snoozed`,
    /// `resolved`, or anything else verbatim in [`ReportedStatus::Other`].
    ReportedStatus {
        /// Waiting for an agent.
        Open => "open",
        /// Held by a bot.
        Pending => "pending",
        /// Hidden until a time or the customer's next message.
        Snoozed => "snoozed",
        /// Done.
        Resolved => "resolved",
    }
);

reported_enum!(
    /// A conversation's priority as Chatwoot reported it: `urgent`, `high`, `medium`, `low`,
    /// or anything else verbatim in [`ReportedPriority::Other`]. ("No priority" is `None`.)
    ReportedPriority {
        /// Most urgent.
        Urgent => "urgent",
        /// High.
        High => "high",
        /// Medium (Copydesk's `normal`).
        Medium => "medium",
        /// Low.
        Low => "low",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_read_to_variants_and_unknown_ones_are_kept() {
        let open: ReportedStatus = serde_json::from_str("\"open\"").expect("decodes");
        assert_eq!(open, ReportedStatus::Open);
        let odd: ReportedStatus = serde_json::from_str("\"archived\"").expect("never fails");
        assert_eq!(odd, ReportedStatus::Other("archived".into()));
        assert_eq!(
            serde_json::to_string(&odd).expect("encodes"),
            "\"archived\""
        );
        let medium: ReportedPriority = serde_json::from_str("\"medium\"").expect("decodes");
        assert_eq!(medium, ReportedPriority::Medium);
        assert_eq!(
            serde_json::to_string(&medium).expect("encodes"),
            "\"medium\""
        );
        assert!(serde_json::from_str::<ReportedStatus>("3").is_err());
    }
}
