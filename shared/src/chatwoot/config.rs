//! The `CHATWOOT_*` config section: where Chatwoot is, which account, which token, how long
//! to wait. Read once at startup; every error names the variable.

use std::time::Duration;

use secrecy::SecretString;

use crate::config::{millis_or, parsed_or, required, secret, ConfigError, EnvSource};

/// Default for `CHATWOOT_TIMEOUT_MS`: Chatwoot answers in well under a second when healthy.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);

/// How to reach the Chatwoot Application API.
#[derive(Debug, Clone)]
pub struct ChatwootConfig {
    /// `CHATWOOT_BASE_URL`: `http(s)://host[:port][/prefix]`, without a trailing slash.
    pub base_url: String,
    /// `CHATWOOT_API_TOKEN`: a user or agent-bot access token, sent as `api_access_token`.
    pub api_token: SecretString,
    /// `CHATWOOT_ACCOUNT_ID`: the account every call is made in.
    pub account_id: i64,
    /// `CHATWOOT_TIMEOUT_MS`: the whole-request timeout (default 10 000).
    pub timeout: Duration,
}

impl ChatwootConfig {
    /// A config from already-known values, e.g. a test's fake Chatwoot; the timeout is the
    /// default. The base URL is validated the same way as `from_env` does.
    pub fn new(
        base_url: &str,
        api_token: SecretString,
        account_id: i64,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: validate_base_url(base_url.to_owned())?,
            api_token,
            account_id,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Reads `CHATWOOT_BASE_URL`, `CHATWOOT_API_TOKEN`, `CHATWOOT_ACCOUNT_ID` (all required) and
    /// `CHATWOOT_TIMEOUT_MS`.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let base_url = required(
            env,
            "CHATWOOT_BASE_URL",
            "set it to Chatwoot's URL, e.g. https://chat.example.com",
        )?;
        let base_url = validate_base_url(base_url)?;
        let api_token = secret(
            env,
            "CHATWOOT_API_TOKEN",
            "set it to an access token from Chatwoot's profile settings (or an agent bot's token)",
        )?;
        let account_id: i64 = parsed_or(env, "CHATWOOT_ACCOUNT_ID", 0)?;
        if env.get("CHATWOOT_ACCOUNT_ID").is_none() {
            return Err(ConfigError::Missing {
                var: "CHATWOOT_ACCOUNT_ID",
                hint:
                    "set it to the numeric account id in Chatwoot's URLs (/app/accounts/{id}/...)",
            });
        }
        if account_id <= 0 {
            return Err(ConfigError::Invalid {
                var: "CHATWOOT_ACCOUNT_ID",
                value: account_id.to_string(),
                reason: "expected a positive account id".into(),
            });
        }
        let timeout = millis_or(env, "CHATWOOT_TIMEOUT_MS", DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(ConfigError::Invalid {
                var: "CHATWOOT_TIMEOUT_MS",
                value: "0".into(),
                reason: "expected a timeout of at least 1 ms".into(),
            });
        }
        Ok(Self {
            base_url,
            api_token,
            account_id,
            timeout,
        })
    }
}

/// Accepts an absolute http(s) URL without query or fragment and drops trailing slashes, so
/// paths can be appended with `format!`.
fn validate_base_url(value: String) -> Result<String, ConfigError> {
    let invalid = |value: String, reason: &str| ConfigError::Invalid {
        var: "CHATWOOT_BASE_URL",
        value,
        reason: reason.into(),
    };
    let url = match reqwest::Url::parse(value.trim()) {
        Ok(url) => url,
        Err(e) => return Err(invalid(value, &e.to_string())),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(value, "expected an http:// or https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(value, "expected no query string or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn full() -> Vec<(&'static str, &'static str)> {
        vec![
            ("CHATWOOT_BASE_URL", "https://chat.example.com/"),
            ("CHATWOOT_API_TOKEN", "s3cr3t-token"),
            ("CHATWOOT_ACCOUNT_ID", "7"),
        ]
    }

    #[test]
    fn a_complete_environment_parses_with_the_default_timeout() {
        let config = ChatwootConfig::from_env(&env(&full())).expect("valid config");
        assert_eq!(config.base_url, "https://chat.example.com");
        assert_eq!(config.api_token.expose_secret(), "s3cr3t-token");
        assert_eq!(config.account_id, 7);
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn each_missing_variable_is_named() {
        for var in [
            "CHATWOOT_BASE_URL",
            "CHATWOOT_API_TOKEN",
            "CHATWOOT_ACCOUNT_ID",
        ] {
            let pairs: Vec<_> = full().into_iter().filter(|(k, _)| *k != var).collect();
            let err =
                ChatwootConfig::from_env(&env(&pairs)).expect_err("a required variable is missing");
            assert!(err.to_string().contains(var), "{err} should name {var}");
        }
    }

    #[test]
    fn malformed_values_are_rejected_with_the_variable_named() {
        for (var, value) in [
            ("CHATWOOT_BASE_URL", "chat.example.com"),
            ("CHATWOOT_BASE_URL", "ftp://chat.example.com"),
            ("CHATWOOT_ACCOUNT_ID", "seven"),
            ("CHATWOOT_ACCOUNT_ID", "0"),
            ("CHATWOOT_TIMEOUT_MS", "soon"),
            ("CHATWOOT_TIMEOUT_MS", "0"),
        ] {
            let mut pairs = full();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            let err = ChatwootConfig::from_env(&env(&pairs)).expect_err("invalid value");
            assert!(err.to_string().contains(var), "{err} should name {var}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let config = ChatwootConfig::from_env(&env(&full())).expect("valid config");
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }
}
