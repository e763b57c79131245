//! The reconciliation sweep's settings (`COPYDESK_RECONCILE_*`).

use std::time::Duration;

use copydesk::config::{millis_or, parsed_or, secs_or, ConfigError, EnvSource};

/// Longest look-back window: the enqueue dedupe keys live 24 h, and the sweep relies on them
/// to tell delivered events from lost ones.
pub const MAX_WINDOW: Duration = Duration::from_secs(23 * 3600);

/// How the sweep runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileConfig {
    /// Time between passes (`COPYDESK_RECONCILE_INTERVAL_MS`, default 60 s).
    pub interval: Duration,
    /// Customer messages older than this are listed as missed, not drafted
    /// (`COPYDESK_RECONCILE_WINDOW_SECS`, default 6 h, at most [`MAX_WINDOW`]). The first pass
    /// of an account (no watermark yet) looks back this far.
    pub window: Duration,
    /// Each pass re-reads this much before the watermark, for clock skew between Chatwoot
    /// and Copydesk (`COPYDESK_RECONCILE_OVERLAP_SECS`, default 120 s; free: the dedupe keys
    /// swallow what was seen).
    pub overlap: Duration,
    /// Pages of 25 conversations read per account and pass
    /// (`COPYDESK_RECONCILE_MAX_PAGES`, default 20). A pass that hits it is partial and
    /// leaves the watermark where it was.
    pub max_pages: u32,
    /// Pages of 20 messages read per conversation (`COPYDESK_RECONCILE_MESSAGE_PAGES`,
    /// default 10).
    pub message_pages: u32,
    /// First pause after a 429 (`COPYDESK_RECONCILE_BACKOFF_MS`, default 1 000; doubled up to
    /// 30 s, 5 tries).
    pub backoff: Duration,
    /// Accounts to reconcile (`COPYDESK_RECONCILE_ACCOUNTS`: comma-separated ids, `all` by
    /// default, `none` turns the sweep off). `None` is every configured account.
    pub accounts: Option<Vec<i64>>,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            window: Duration::from_secs(6 * 3600),
            overlap: Duration::from_secs(120),
            max_pages: 20,
            message_pages: 10,
            backoff: Duration::from_secs(1),
            accounts: None,
        }
    }
}

impl ReconcileConfig {
    /// Reads the `COPYDESK_RECONCILE_*` variables; errors name the variable.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let d = Self::default();
        let window = secs_or(env, "COPYDESK_RECONCILE_WINDOW_SECS", d.window)?;
        if window > MAX_WINDOW || window.is_zero() {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_RECONCILE_WINDOW_SECS",
                value: window.as_secs().to_string(),
                reason: format!(
                    "must be between 1 and {} seconds (the dedupe keys that tell delivered \
                     events from lost ones live 24 h)",
                    MAX_WINDOW.as_secs()
                ),
            });
        }
        let interval = millis_or(env, "COPYDESK_RECONCILE_INTERVAL_MS", d.interval)?;
        if interval < Duration::from_millis(100) {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_RECONCILE_INTERVAL_MS",
                value: interval.as_millis().to_string(),
                reason: "must be at least 100 ms".to_owned(),
            });
        }
        Ok(Self {
            interval,
            window,
            overlap: secs_or(env, "COPYDESK_RECONCILE_OVERLAP_SECS", d.overlap)?,
            max_pages: parsed_or(env, "COPYDESK_RECONCILE_MAX_PAGES", d.max_pages)?.max(1),
            message_pages: parsed_or(env, "COPYDESK_RECONCILE_MESSAGE_PAGES", d.message_pages)?
                .max(1),
            backoff: millis_or(env, "COPYDESK_RECONCILE_BACKOFF_MS", d.backoff)?,
            accounts: accounts(env)?,
        })
    }

    /// Whether `account` is reconciled.
    pub fn covers(&self, account: i64) -> bool {
        self.accounts
            .as_ref()
            .is_none_or(|ids| ids.contains(&account))
    }
}

fn accounts(env: &dyn EnvSource) -> Result<Option<Vec<i64>>, ConfigError> {
    const VAR: &str = "COPYDESK_RECONCILE_ACCOUNTS";
    let Some(text) = env.get(VAR) else {
        return Ok(None);
    };
    match text.trim() {
        "" | "all" => Ok(None),
        "none" | "off" => Ok(Some(Vec::new())),
        list => list
            .split(',')
            .map(|id| {
                id.trim().parse::<i64>().map_err(|_| ConfigError::Invalid {
                    var: VAR,
                    value: text.clone(),
                    reason: format!(
                        "{id:?} is not an account id (expected e.g. `1,2`, `all` or `none`)"
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use copydesk::config::env_of as env;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            ReconcileConfig::from_env(&env(&[])).expect("defaults"),
            ReconcileConfig::default()
        );
        let c = ReconcileConfig::from_env(&env(&[
            ("COPYDESK_RECONCILE_INTERVAL_MS", "2000"),
            ("COPYDESK_RECONCILE_WINDOW_SECS", "3600"),
            ("COPYDESK_RECONCILE_ACCOUNTS", "1, 3"),
        ]))
        .expect("valid");
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.window, Duration::from_secs(3600));
        assert!(c.covers(3) && !c.covers(2));
        let off = ReconcileConfig::from_env(&env(&[("COPYDESK_RECONCILE_ACCOUNTS", "none")]))
            .expect("valid");
        assert!(!off.covers(1));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("COPYDESK_RECONCILE_WINDOW_SECS", "90000"),
            ("COPYDESK_RECONCILE_WINDOW_SECS", "0"),
            ("COPYDESK_RECONCILE_INTERVAL_MS", "5"),
            ("COPYDESK_RECONCILE_ACCOUNTS", "1,x"),
            ("COPYDESK_RECONCILE_MAX_PAGES", "-1"),
        ] {
            let error = ReconcileConfig::from_env(&env(&[(var, value)])).expect_err(value);
            assert!(error.to_string().contains(var), "{error}");
        }
    }
}
