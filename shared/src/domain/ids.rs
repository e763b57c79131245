//! Typed ids. Each is a newtype over what Chatwoot or Copydesk uses (an integer, or a short
//! string), so an account id cannot be passed where a conversation id is expected.
//!
//! On the wire every id is `#[serde(transparent)]`: a JSON number or string, byte for byte
//! what the plain `i64`/`String` fields wrote before, so jobs already queued still decode.
//! Decoding does not re-check the rules [`FromStr`] applies: payloads are written by
//! Copydesk itself after parsing. Text from outside (headers, paths, arguments) is parsed with
//! [`FromStr`], whose errors say which id was wrong and why.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a text is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// An integer id that is not a decimal `i64`.
    #[error("{kind} {input:?} is not a whole number")]
    NotANumber {
        /// Which id (`account id`, `conversation id` …).
        kind: &'static str,
        /// The text, cut to 40 characters.
        input: String,
    },
    /// An empty string id.
    #[error("{kind} is empty")]
    Empty {
        /// Which id.
        kind: &'static str,
    },
    /// A string id longer than its limit.
    #[error("{kind} is {len} bytes long (at most {max})")]
    TooLong {
        /// Which id.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string id with a byte outside visible ASCII (space, control, non-ASCII).
    #[error("{kind} may hold visible ASCII only (no spaces)")]
    NotVisibleAscii {
        /// Which id.
        kind: &'static str,
    },
}

/// The first 40 characters of `input`, for error messages.
fn excerpt(input: &str) -> String {
    input.chars().take(40).collect()
}

macro_rules! integer_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The id Chatwoot sent as a JSON integer (already a number, so nothing to check).
            pub const fn new(id: i64) -> Self {
                Self(id)
            }

            /// The number.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            /// A decimal integer, e.g. `"117"`.
            fn from_str(s: &str) -> Result<Self, IdError> {
                s.parse::<i64>().map(Self).map_err(|_| IdError::NotANumber {
                    kind: $kind,
                    input: excerpt(s),
                })
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl redis::ToRedisArgs for $name {
            /// The id as a Redis argument: its decimal text.
            fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
                self.0.write_redis_args(out)
            }
        }

        impl redis::ToSingleRedisArg for $name {}

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    };
}

integer_id!(
    /// A Chatwoot account id (`/accounts/{id}`). `0` stands for "not sent" in the rare
    /// single-account webhooks that leave the account out.
    AccountId,
    "account id"
);

integer_id!(
    /// A conversation's display id: unique within its account, the id in
    /// `/conversations/{id}` URLs.
    ConversationId,
    "conversation id"
);

integer_id!(
    /// A Chatwoot message id (unique across accounts).
    MessageId,
    "message id"
);

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The longest id accepted by [`FromStr`], in bytes.
            pub const MAX_LEN: usize = $max;

            /// An id Copydesk wrote itself and reads back from its own store (already
            /// checked when it was made).
            #[allow(dead_code)]
            pub(crate) fn trusted(id: String) -> Self {
                Self(id)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }

            /// Checks the rules [`FromStr`] applies: 1..=`MAX_LEN` bytes of visible ASCII.
            fn check(s: &str) -> Result<(), IdError> {
                if s.is_empty() {
                    return Err(IdError::Empty { kind: $kind });
                }
                if s.len() > Self::MAX_LEN {
                    return Err(IdError::TooLong {
                        kind: $kind,
                        len: s.len(),
                        max: Self::MAX_LEN,
                    });
                }
                if !s.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(IdError::NotVisibleAscii { kind: $kind });
                }
                Ok(())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            /// 1..=`MAX_LEN` bytes of visible ASCII (the id becomes part of Redis keys).
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::check(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                s.parse()
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::check(&s)?;
                Ok(Self(s))
            }
        }

        impl redis::ToRedisArgs for $name {
            /// The id as a Redis argument: its text.
            fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
                self.0.write_redis_args(out)
            }
        }

        impl redis::ToSingleRedisArg for $name {}

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

string_id!(
    /// An approval item's id: `{account}-{conversation}-{message}` for drafts (see
    /// [`ApprovalId::for_message`]).
    ApprovalId,
    "approval id",
    128
);

string_id!(
    /// The `X-Chatwoot-Delivery` header of the webhook that started a job chain, or a
    /// synthetic id for chains started by operators (`ops:{approval id}`).
    DeliveryId,
    "delivery id",
    128
);

impl ApprovalId {
    /// The id of the approval item for a customer message.
    pub fn for_message(
        account_id: AccountId,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Self {
        Self(format!("{account_id}-{conversation_id}-{message_id}"))
    }

    /// Account, conversation and message of a draft's id (`None` for other id shapes).
    pub fn parts(&self) -> Option<(i64, i64, i64)> {
        let mut parts = self.0.split('-');
        let account = parts.next()?.parse().ok()?;
        let conversation = parts.next()?.parse().ok()?;
        let message = parts.next()?.parse().ok()?;
        parts
            .next()
            .is_none()
            .then_some((account, conversation, message))
    }
}

impl DeliveryId {
    /// The synthetic delivery id of a chain an operator started on an approval item:
    /// `ops:{approval id}`.
    pub fn for_operator(approval_id: &str) -> Self {
        Self(format!("ops:{approval_id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ids_parse_decimal_text_and_say_what_was_wrong() {
        assert_eq!(
            "117".parse::<ConversationId>(),
            Ok(ConversationId::new(117))
        );
        assert_eq!(AccountId::try_from("-3"), Ok(AccountId::new(-3)));
        let error = "12a".parse::<MessageId>().expect_err("not a number");
        assert_eq!(
            error.to_string(),
            "message id \"12a\" is not a whole number"
        );
        assert_eq!(MessageId::new(9).to_string(), "9");
        assert_eq!(i64::from(AccountId::new(4)), 4);
    }

    #[test]
    fn string_ids_are_short_visible_ascii() {
        let id: DeliveryId = "3f1c2a9e-6b7d".parse().expect("valid");
        assert_eq!(id.as_str(), "3f1c2a9e-6b7d");
        assert_eq!(
            "".parse::<DeliveryId>(),
            Err(IdError::Empty {
                kind: "delivery id"
            })
        );
        assert_eq!(
            "a b".parse::<ApprovalId>(),
            Err(IdError::NotVisibleAscii {
                kind: "approval id"
            })
        );
        let long = "a".repeat(DeliveryId::MAX_LEN + 1);
        assert!(matches!(
            long.parse::<DeliveryId>(),
            Err(IdError::TooLong {
                len: 129,
                max: 128,
                ..
            })
        ));
        assert!(DeliveryId::try_from("a".repeat(DeliveryId::MAX_LEN)).is_ok());
    }

    #[test]
    fn ids_are_plain_numbers_and_strings_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&ConversationId::new(117)).expect("encodes"),
            "117"
        );
        let id =
            ApprovalId::for_message(AccountId::new(1), ConversationId::new(2), MessageId::new(3));
        assert_eq!(serde_json::to_string(&id).expect("encodes"), "\"1-2-3\"");
        let back: ApprovalId = serde_json::from_str("\"1-2-3\"").expect("decodes");
        assert_eq!(back, id);
        assert_eq!(DeliveryId::for_operator("1-2-3"), "ops:1-2-3");
    }
}
