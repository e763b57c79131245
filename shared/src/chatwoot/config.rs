//! The `CHATWOOT_*` config section: where Chatwoot is, which account, which token, how long
//! to wait, how large an answer may be. Read once at startup; every error names the variable.
//!
//! The token travels in a header on every call, so the base URL must be `https://`, except
//! for a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`: a sidecar, the demo, the tests),
//! where nothing leaves the machine; `CHATWOOT_ALLOW_HTTP=1` allows plain `http://` to any
//! host (a private network you trust).

use std::time::Duration;

use secrecy::SecretString;

use crate::config::{millis_or, parsed_or, required, secret, ConfigError, EnvSource};

/// Default for `CHATWOOT_TIMEOUT_MS`: Chatwoot answers in well under a second when healthy.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);

/// Default for `CHATWOOT_MAX_RESPONSE_BYTES`: 16 MiB. The largest answer Copydesk reads is a
/// page of 20 messages; at Chatwoot's 150 000 characters per message that is about 12 MB of
/// JSON in the worst case.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Smallest `CHATWOOT_MAX_RESPONSE_BYTES` accepted.
const MIN_RESPONSE_BYTES: usize = 1024;

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
    /// `CHATWOOT_MAX_RESPONSE_BYTES`: a larger answer is an error, read no further (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub max_response_bytes: usize,
}

impl ChatwootConfig {
    /// A config from already-known values, e.g. a test's fake Chatwoot; timeout and size cap
    /// are the defaults. The base URL is validated the same way as `from_env` does (without
    /// `CHATWOOT_ALLOW_HTTP`: `http://` only to a loopback host).
    pub fn new(
        base_url: &str,
        api_token: SecretString,
        account_id: i64,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: validate_base_url(base_url.to_owned(), false)?,
            api_token,
            account_id,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Reads `CHATWOOT_BASE_URL`, `CHATWOOT_API_TOKEN`, `CHATWOOT_ACCOUNT_ID` (all required),
    /// `CHATWOOT_TIMEOUT_MS`, `CHATWOOT_MAX_RESPONSE_BYTES` and `CHATWOOT_ALLOW_HTTP`.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let endpoint = endpoint_from_env(env)?;
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
        Ok(endpoint.for_account(account_id, api_token))
    }
}

/// Where Chatwoot is and how to talk to it, without an account: `CHATWOOT_BASE_URL`,
/// `CHATWOOT_TIMEOUT_MS`, `CHATWOOT_MAX_RESPONSE_BYTES`, `CHATWOOT_ALLOW_HTTP`. Every
/// account's client shares it ([`super::ChatwootAccounts`]).
#[derive(Debug, Clone)]
pub struct ChatwootEndpoint {
    /// `CHATWOOT_BASE_URL`, validated, without a trailing slash.
    pub base_url: String,
    /// `CHATWOOT_TIMEOUT_MS`.
    pub timeout: Duration,
    /// `CHATWOOT_MAX_RESPONSE_BYTES`.
    pub max_response_bytes: usize,
}

impl ChatwootEndpoint {
    /// The config of one account at this endpoint.
    pub fn for_account(&self, account_id: i64, api_token: SecretString) -> ChatwootConfig {
        ChatwootConfig {
            base_url: self.base_url.clone(),
            api_token,
            account_id,
            timeout: self.timeout,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// Reads the account-independent `CHATWOOT_*` variables ([`ChatwootEndpoint`]).
pub fn endpoint_from_env(env: &dyn EnvSource) -> Result<ChatwootEndpoint, ConfigError> {
    let base_url = required(
        env,
        "CHATWOOT_BASE_URL",
        "set it to Chatwoot's URL, e.g. https://chat.example.com",
    )?;
    let allow_http = parsed_or(env, "CHATWOOT_ALLOW_HTTP", 0u8).and_then(|v| match v {
        0 | 1 => Ok(v == 1),
        _ => Err(ConfigError::Invalid {
            var: "CHATWOOT_ALLOW_HTTP",
            value: v.to_string(),
            reason: "expected 0 or 1".into(),
        }),
    })?;
    let base_url = validate_base_url(base_url, allow_http)?;
    let timeout = millis_or(env, "CHATWOOT_TIMEOUT_MS", DEFAULT_TIMEOUT)?;
    if timeout.is_zero() {
        return Err(ConfigError::Invalid {
            var: "CHATWOOT_TIMEOUT_MS",
            value: "0".into(),
            reason: "expected a timeout of at least 1 ms".into(),
        });
    }
    let max_response_bytes = parsed_or(
        env,
        "CHATWOOT_MAX_RESPONSE_BYTES",
        DEFAULT_MAX_RESPONSE_BYTES,
    )?;
    if max_response_bytes < MIN_RESPONSE_BYTES {
        return Err(ConfigError::Invalid {
            var: "CHATWOOT_MAX_RESPONSE_BYTES",
            value: max_response_bytes.to_string(),
            reason: format!("expected at least {MIN_RESPONSE_BYTES} bytes"),
        });
    }
    Ok(ChatwootEndpoint {
        base_url,
        timeout,
        max_response_bytes,
    })
}

/// Accepts an absolute `https://` URL (or `http://` to a loopback host, or to any host when
/// `allow_http`) without query or fragment, and drops trailing slashes, so paths can be
/// appended with `format!`.
fn validate_base_url(value: String, allow_http: bool) -> Result<String, ConfigError> {
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
    if url.scheme() == "http" && !allow_http && !is_loopback(&url) {
        return Err(invalid(
            value,
            "plain http:// would send the API token unencrypted: use https://, or set CHATWOOT_ALLOW_HTTP=1 for a trusted private network (http:// to localhost is always allowed)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(value, "expected no query string or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `localhost` (or `*.localhost`), `127.0.0.0/8` or `[::1]`.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {

    use secrecy::ExposeSecret;

    use super::*;

    use crate::config::env_of as env;

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
            ("CHATWOOT_MAX_RESPONSE_BYTES", "12"),
            ("CHATWOOT_MAX_RESPONSE_BYTES", "lots"),
            ("CHATWOOT_ALLOW_HTTP", "yes"),
        ] {
            let mut pairs = full();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            let err = ChatwootConfig::from_env(&env(&pairs)).expect_err("invalid value");
            assert!(err.to_string().contains(var), "{err} should name {var}");
        }
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback_or_when_allowed() {
        let with = |url: &'static str, allow: Option<&'static str>| {
            let mut pairs = full();
            pairs.retain(|(k, _)| *k != "CHATWOOT_BASE_URL");
            pairs.push(("CHATWOOT_BASE_URL", url));
            if let Some(allow) = allow {
                pairs.push(("CHATWOOT_ALLOW_HTTP", allow));
            }
            ChatwootConfig::from_env(&env(&pairs))
        };
        let err = with("http://chat.example.com", None).expect_err("token in clear text");
        assert!(err.to_string().contains("CHATWOOT_BASE_URL"), "{err}");
        assert!(err.to_string().contains("CHATWOOT_ALLOW_HTTP"), "{err}");
        assert!(with("http://chat.example.com", Some("0")).is_err());
        assert!(with("http://10.0.0.5:3000", None).is_err());
        for url in [
            "http://localhost:3000",
            "http://127.0.0.1:3000",
            "http://127.8.9.1",
            "http://[::1]:3000",
            "https://chat.example.com",
        ] {
            assert!(with(url, None).is_ok(), "{url} is allowed by default");
        }
        let allowed = with("http://chat.internal:3000", Some("1")).expect("explicitly allowed");
        assert_eq!(allowed.base_url, "http://chat.internal:3000");
        assert!(ChatwootConfig::new("http://chat.example.com", "t".to_owned().into(), 1).is_err());
        assert!(ChatwootConfig::new("http://127.0.0.1:9", "t".to_owned().into(), 1).is_ok());
    }

    #[test]
    fn the_response_cap_defaults_and_can_be_set() {
        let config = ChatwootConfig::from_env(&env(&full())).expect("valid");
        assert_eq!(config.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        let mut pairs = full();
        pairs.push(("CHATWOOT_MAX_RESPONSE_BYTES", "65536"));
        let config = ChatwootConfig::from_env(&env(&pairs)).expect("valid");
        assert_eq!(config.max_response_bytes, 65_536);
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let config = ChatwootConfig::from_env(&env(&full())).expect("valid config");
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }
}
