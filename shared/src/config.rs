//! Config sections read from the environment.
//!
//! Each binary composes the sections it needs; each section has a `from_env()` whose error
//! names the variable and says what is wrong with it. Config is read once in `main`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

/// A config variable is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{var} is not set: {hint}")]
    Missing {
        /// The variable.
        var: &'static str,
        /// What to set it to.
        hint: &'static str,
    },
    /// A variable is set but cannot be used.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What it held (never a secret).
        value: String,
        /// Why it is unusable.
        reason: String,
    },
}

/// Where a config section reads its variables from: the process environment or, in tests,
/// a fixed list.
pub trait EnvSource {
    /// The variable's value, if set and non-empty.
    fn get(&self, var: &str) -> Option<String>;
}

/// An environment of fixed `(variable, value)` pairs, for tests and tools that build a
/// configuration without touching the process environment.
pub fn env_of(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, var: &str) -> Option<String> {
        std::env::var(var).ok().filter(|v| !v.trim().is_empty())
    }
}

impl EnvSource for std::collections::HashMap<String, String> {
    fn get(&self, var: &str) -> Option<String> {
        self.get(var).cloned().filter(|v| !v.trim().is_empty())
    }
}

/// A required variable.
pub fn required(
    env: &dyn EnvSource,
    var: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    env.get(var).ok_or(ConfigError::Missing { var, hint })
}

/// An optional variable parsed with `FromStr`, or `default` when unset.
pub fn parsed_or<T>(env: &dyn EnvSource, var: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match env.get(var) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: e.to_string(),
                value,
            }),
    }
}

/// An optional duration given in whole milliseconds.
pub fn millis_or(
    env: &dyn EnvSource,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let ms = parsed_or(env, var, default.as_millis() as u64)?;
    Ok(Duration::from_millis(ms))
}

/// An optional duration given in whole seconds.
pub fn secs_or(
    env: &dyn EnvSource,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let s = parsed_or(env, var, default.as_secs())?;
    Ok(Duration::from_secs(s))
}

/// The default retention (`COPYDESK_RETENTION_DAYS`): 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// `COPYDESK_RETENTION_SECS` when set (tests), else `COPYDESK_RETENTION_DAYS` (default 30).
pub fn retention_from_env(env: &dyn EnvSource) -> Result<Duration, ConfigError> {
    if env.get("COPYDESK_RETENTION_SECS").is_some() {
        let secs: u64 = parsed_or(env, "COPYDESK_RETENTION_SECS", 0)?;
        return Ok(Duration::from_secs(secs.max(1)));
    }
    let days: u64 = parsed_or(env, "COPYDESK_RETENTION_DAYS", 30)?;
    Ok(Duration::from_secs(days.clamp(1, 36_500) * 24 * 3600))
}

/// Redis connection and key namespace, shared by every process. `Debug` prints the URL
/// redacted ([`RedisConfig::redacted_url`]).
#[derive(Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`, e.g. `redis://copydesk:PASSWORD@redis:6379/0`, or `rediss://…` for TLS.
    /// May hold a password: never print it, print [`RedisConfig::redacted_url`].
    pub url: String,
    /// `COPYDESK_KEY_PREFIX`: the namespace of every key (default `copydesk`). Tests use a
    /// unique prefix each so they can share one Redis.
    pub key_prefix: String,
    /// How long decided approvals, learning records and events are kept
    /// (`COPYDESK_RETENTION_DAYS`, default 30; `COPYDESK_RETENTION_SECS` wins, for tests):
    /// see `copydesk::retention`.
    pub retention: Duration,
    /// `REDIS_CA_FILE`: PEM file of the certificate authority (or authorities) that signed the
    /// Redis server's certificate, for a `rediss://` URL to a Redis with a private CA. Unset,
    /// the server is checked against the Mozilla roots (webpki-roots), as public managed Redis
    /// services need. Only with `rediss://`.
    pub ca_file: Option<PathBuf>,
}

impl RedisConfig {
    /// Reads `REDIS_URL` (required) and `COPYDESK_KEY_PREFIX`.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let url = required(
            env,
            "REDIS_URL",
            "set it to the Redis that holds the queues, e.g. redis://127.0.0.1:6379",
        )?;
        if !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://")
            || url.starts_with("redis+unix://"))
        {
            return Err(ConfigError::Invalid {
                var: "REDIS_URL",
                value: redact_redis_url(&url),
                reason: "expected a redis://, rediss://, unix:// or redis+unix:// URL".into(),
            });
        }
        let key_prefix = env
            .get("COPYDESK_KEY_PREFIX")
            .unwrap_or_else(|| "copydesk".into());
        let retention = retention_from_env(env)?;
        let config = Self {
            url,
            key_prefix,
            retention,
            ca_file: env.get("REDIS_CA_FILE").map(PathBuf::from),
        };
        // A CA file that cannot be read or holds no certificate is reported here, naming the
        // variable, rather than at the first connection.
        config.client()?;
        Ok(config)
    }

    /// A Redis client for [`Self::url`]: TLS (rustls) for `rediss://`, trusting
    /// [`Self::ca_file`] when set. Nothing is sent until a connection is asked for.
    pub fn client(&self) -> Result<redis::Client, ConfigError> {
        let Some(ca_file) = &self.ca_file else {
            return redis::Client::open(self.url.as_str()).map_err(|e| ConfigError::Invalid {
                var: "REDIS_URL",
                value: self.redacted_url(),
                reason: e.to_string(),
            });
        };
        let invalid = |reason: String| ConfigError::Invalid {
            var: "REDIS_CA_FILE",
            value: ca_file.display().to_string(),
            reason,
        };
        if !self.url.starts_with("rediss://") {
            return Err(invalid(format!(
                "a CA file is only used over TLS, but REDIS_URL ({}) is not a rediss:// URL",
                self.redacted_url()
            )));
        }
        let pem = std::fs::read(ca_file).map_err(|e| invalid(format!("cannot be read: {e}")))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(invalid("holds no PEM certificate".into()));
        }
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        };
        redis::Client::build_with_tls(self.url.as_str(), certificates)
            .map_err(|e| invalid(e.to_string()))
    }

    /// What to check when Redis does not answer, for an error message: a plain `redis://`
    /// client cannot talk to a TLS-only port (the server drops the connection), and a
    /// `rediss://` client needs a server certificate it trusts.
    pub fn connect_hint(&self) -> &'static str {
        if self.url.starts_with("rediss://") {
            "check REDIS_URL, that Redis is up and serves TLS on that port, and that its \
             certificate is signed by the CA in REDIS_CA_FILE (or by a public CA when unset)"
        } else if self.url.starts_with("redis://") {
            "check REDIS_URL and that Redis is up; if that Redis port serves TLS only, use a \
             rediss:// URL (and REDIS_CA_FILE for a private CA)"
        } else {
            "check REDIS_URL and that Redis is up"
        }
    }

    /// The URL with any password replaced by `***` (for messages and logs).
    pub fn redacted_url(&self) -> String {
        redact_redis_url(&self.url)
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("key_prefix", &self.key_prefix)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Query parameters that carry a password in Redis URLs (`unix:///run/redis.sock?pass=…`).
const PASSWORD_PARAMS: [&str; 2] = ["pass", "password"];

/// `url` with its password (in the user info or a `pass`/`password` query parameter)
/// replaced by `***`. A URL that does not parse is not printed at all, since where its
/// password ends cannot be told.
pub fn redact_redis_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<REDIS_URL hidden: it does not parse as a URL>".into();
    };
    if parsed.cannot_be_a_base() {
        // `name:secret@host` parses as a scheme and an opaque path.
        return "<REDIS_URL hidden: not a URL with a host>".into();
    }
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return "<REDIS_URL hidden>".into();
    }
    let hides_password = parsed
        .query_pairs()
        .any(|(key, _)| PASSWORD_PARAMS.contains(&key.as_ref()));
    if hides_password {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if PASSWORD_PARAMS.contains(&key.as_ref()) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // The URL crate keeps `***` as typed; a fragment could hold anything.
    parsed.set_fragment(None);
    parsed.to_string().replace("%2A%2A%2A", "***")
}

/// A secret value parsed from a variable; `Debug` never prints it.
pub fn secret(
    env: &dyn EnvSource,
    var: &'static str,
    hint: &'static str,
) -> Result<SecretString, ConfigError> {
    required(env, var, hint).map(SecretString::from)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const PASSWORD: &str = "s3cr%40t-P4ss";

    fn config(url: &str) -> Result<RedisConfig, ConfigError> {
        let env: HashMap<String, String> = [("REDIS_URL".to_owned(), url.to_owned())].into();
        RedisConfig::from_env(&env)
    }

    #[test]
    fn the_redis_password_is_never_printed_whatever_the_url_form() {
        let plain = PASSWORD.replace("%40", "@");
        let urls = [
            format!("redis://copydesk:{PASSWORD}@redis:6379/0"),
            format!("rediss://copydesk:{PASSWORD}@redis.example:6380"),
            format!("redis://:{PASSWORD}@127.0.0.1"),
            format!("redis://:{plain}@127.0.0.1:6379"),
            format!("redis://127.0.0.1:6379/0?password={PASSWORD}"),
            format!("unix:///run/redis.sock?db=1&pass={PASSWORD}"),
            format!("redis+unix:///run/redis.sock?pass={PASSWORD}&user=copydesk"),
            format!("redis://copydesk:{PASSWORD}@[::1]:6379#frag{PASSWORD}"),
        ];
        for url in &urls {
            let config = config(url).expect("a valid REDIS_URL");
            for printed in [format!("{config:?}"), config.redacted_url()] {
                assert!(
                    !printed.contains("s3cr") && !printed.contains("P4ss"),
                    "{url} printed as {printed}"
                );
            }
            assert!(
                config.redacted_url().contains("***"),
                "{}",
                config.redacted_url()
            );
        }
        for bad in [
            format!("http://copydesk:{PASSWORD}@redis:6379"),
            format!("copydesk:{PASSWORD}@redis:6379"),
            format!("redis//:{plain}@redis"),
        ] {
            let error = config(&bad).expect_err("not a Redis URL");
            for printed in [error.to_string(), format!("{error:?}")] {
                assert!(
                    !printed.contains("s3cr") && !printed.contains("P4ss"),
                    "{bad} printed as {printed}"
                );
                assert!(printed.contains("REDIS_URL"), "{printed}");
            }
        }
    }

    #[test]
    fn redaction_keeps_what_helps_find_the_redis() {
        let config = config("rediss://copydesk:pw@redis.internal:6380/2").expect("valid");
        assert_eq!(
            config.redacted_url(),
            "rediss://copydesk:***@redis.internal:6380/2"
        );
        let config = config_ok("redis://127.0.0.1:6379");
        assert_eq!(config.redacted_url(), "redis://127.0.0.1:6379");
    }

    #[test]
    fn a_ca_file_that_cannot_be_used_is_a_config_error_naming_it() {
        let env = |url: &str, ca: &str| -> HashMap<String, String> {
            [
                ("REDIS_URL".to_owned(), url.to_owned()),
                ("REDIS_CA_FILE".to_owned(), ca.to_owned()),
            ]
            .into()
        };
        let missing = "/nonexistent/copydesk-redis-ca.pem";
        for (url, ca, why) in [
            ("rediss://redis:6380", missing, "cannot be read"),
            ("redis://redis:6379", missing, "not a rediss:// URL"),
            (
                "rediss://redis:6380",
                "/dev/null",
                "holds no PEM certificate",
            ),
        ] {
            let error = RedisConfig::from_env(&env(url, ca)).expect_err("an unusable CA file");
            let printed = error.to_string();
            assert!(printed.contains("REDIS_CA_FILE"), "{printed}");
            assert!(printed.contains(why), "{printed}");
        }
        let plain = config_ok("rediss://redis:6380");
        assert_eq!(plain.ca_file, None);
        assert!(plain.connect_hint().contains("REDIS_CA_FILE"));
        assert!(config_ok("redis://redis:6379")
            .connect_hint()
            .contains("rediss://"));
    }

    fn config_ok(url: &str) -> RedisConfig {
        config(url).expect("valid")
    }
}
