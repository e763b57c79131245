//! Legacy mode: unsigned webhooks from Chatwoot older than v4.12 (account webhooks) or v4.13
//! (agent bots and API inboxes), which cannot sign them.
//!
//! Off by default (`COPYDESK_LEGACY_WEBHOOKS=1` turns it on). The webhook URL then carries a
//! long random per-account token, `POST /webhooks/chatwoot/{token}`, set as the account's
//! `legacy_token` in `COPYDESK_ACCOUNTS_FILE` (or `COPYDESK_LEGACY_WEBHOOK_TOKEN` with
//! `CHATWOOT_ACCOUNT_ID`). A request is accepted only when:
//!
//! - the token is one account's legacy token (compared in constant time, before the body is
//!   read: a wrong token never gets a body buffer), and the body names that same account;
//! - the event's own time (a message's `created_at`, a conversation's `updated_at` or, for
//!   `conversation_created`, `created_at`) is within `COPYDESK_LEGACY_MAX_AGE_SECS` (default
//!   600) of now, either way: there is no signed timestamp, so this bounds how long a
//!   captured request can be replayed; within the window the cause-key dedupe swallows the
//!   replay (the same message, the same conversation change).
//!
//! The token is never logged: routes log the route label (`webhooks_legacy`), never the
//! path, and metrics count by event and outcome only. The plain `/webhooks/chatwoot` keeps
//! requiring signatures, so both modes run at once during a migration.

use std::time::Duration;

use copydesk::config::{parsed_or, secs_or, ConfigError, EnvSource};
use copydesk::event::WebhookEvent;

/// Default `COPYDESK_LEGACY_MAX_AGE_SECS`: 10 minutes.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);

/// The legacy mode's settings (`Some` only when `COPYDESK_LEGACY_WEBHOOKS=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyConfig {
    /// `COPYDESK_LEGACY_MAX_AGE_SECS`: how far the event's own time may be from now.
    pub max_age: Duration,
}

impl Default for LegacyConfig {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

impl LegacyConfig {
    /// `None` unless `COPYDESK_LEGACY_WEBHOOKS=1`; then `COPYDESK_LEGACY_MAX_AGE_SECS`.
    pub fn from_env(env: &dyn EnvSource) -> Result<Option<Self>, ConfigError> {
        let on: u8 = parsed_or(env, "COPYDESK_LEGACY_WEBHOOKS", 0)?;
        match on {
            0 => Ok(None),
            1 => {
                let max_age = secs_or(env, "COPYDESK_LEGACY_MAX_AGE_SECS", DEFAULT_MAX_AGE)?;
                if max_age.is_zero() {
                    return Err(ConfigError::Invalid {
                        var: "COPYDESK_LEGACY_MAX_AGE_SECS",
                        value: "0".into(),
                        reason: "must be at least 1".into(),
                    });
                }
                Ok(Some(Self { max_age }))
            }
            other => Err(ConfigError::Invalid {
                var: "COPYDESK_LEGACY_WEBHOOKS",
                value: other.to_string(),
                reason: "expected 0 or 1".into(),
            }),
        }
    }
}

/// The event's own time in Unix seconds, where Chatwoot sends one: a message's
/// `created_at`; a conversation change's `updated_at` (else `created_at`);
/// `conversation_created`'s `created_at`. `None` for the rest (contacts, typing, widget,
/// unknown events), which Copydesk ignores anyway.
pub fn event_time(event: &WebhookEvent) -> Option<i64> {
    match event {
        WebhookEvent::MessageCreated(message) | WebhookEvent::MessageUpdated(message) => {
            Some(message.created_at.unix_secs())
        }
        WebhookEvent::ConversationCreated(conversation) => conversation
            .created_at
            .or(conversation.updated_at)
            .map(|t| t.unix_secs()),
        WebhookEvent::ConversationUpdated(conversation)
        | WebhookEvent::ConversationStatusChanged(conversation) => conversation
            .updated_at
            .or(conversation.created_at)
            .map(|t| t.unix_secs()),
        _ => None,
    }
}

/// Why a legacy webhook's time is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaleEvent {
    /// The event carries no time of its own.
    #[error("the event carries no created_at/updated_at, which legacy (unsigned) webhooks need")]
    NoTime,
    /// The event's time is outside the window.
    #[error(
        "the event's created_at is {age_secs} s from now, outside the legacy window of \
         {max_age_secs} s (COPYDESK_LEGACY_MAX_AGE_SECS): refused as a possible replay"
    )]
    OutsideWindow {
        /// Now minus the event's time (negative: in the future).
        age_secs: i64,
        /// The window.
        max_age_secs: u64,
    },
}

/// Checks `event_time` against `now` and the window.
pub fn check_window(
    event_time: Option<i64>,
    now_unix_secs: i64,
    max_age: Duration,
) -> Result<(), StaleEvent> {
    let at = event_time.ok_or(StaleEvent::NoTime)?;
    let age_secs = now_unix_secs.saturating_sub(at);
    if age_secs.unsigned_abs() > max_age.as_secs() {
        return Err(StaleEvent::OutsideWindow {
            age_secs,
            max_age_secs: max_age.as_secs(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn legacy_mode_is_off_by_default_and_the_window_defaults_to_ten_minutes() {
        let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(LegacyConfig::from_env(&env(&[])).expect("valid"), None);
        assert_eq!(
            LegacyConfig::from_env(&env(&[("COPYDESK_LEGACY_WEBHOOKS", "1")])).expect("valid"),
            Some(LegacyConfig::default())
        );
        assert!(LegacyConfig::from_env(&env(&[("COPYDESK_LEGACY_WEBHOOKS", "yes")])).is_err());
        assert!(LegacyConfig::from_env(&env(&[
            ("COPYDESK_LEGACY_WEBHOOKS", "1"),
            ("COPYDESK_LEGACY_MAX_AGE_SECS", "0")
        ]))
        .is_err());
    }

    #[test]
    fn the_window_holds_both_ways_and_needs_a_time() {
        let window = Duration::from_secs(600);
        assert_eq!(check_window(Some(1_000), 1_600, window), Ok(()));
        assert_eq!(check_window(Some(2_200), 1_600, window), Ok(()));
        assert!(matches!(
            check_window(Some(999), 1_600, window),
            Err(StaleEvent::OutsideWindow { age_secs: 601, .. })
        ));
        assert!(matches!(
            check_window(Some(2_201), 1_600, window),
            Err(StaleEvent::OutsideWindow { age_secs: -601, .. })
        ));
        assert_eq!(check_window(None, 1_600, window), Err(StaleEvent::NoTime));
    }

    #[test]
    fn the_synthetic_delivery_id_is_stable_and_a_valid_id() {
        use copydesk::signature::body_delivery_id;
        let a = body_delivery_id(b"{}");
        assert_eq!(a, body_delivery_id(b"{}"));
        assert_ne!(a, body_delivery_id(b"{ }"));
        assert!(a.as_str().len() <= crate::webhook::MAX_DELIVERY_ID_LEN);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_graphic()));
    }
}
