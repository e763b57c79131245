//! Config sections read from the environment.
//!
//! Each binary composes the sections it needs; each section has a `from_env()` whose error
//! names the variable and says what is wrong with it. Config is read once in `main`.

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

/// Redis connection and key namespace, shared by every process.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `REDIS_URL`, e.g. `redis://127.0.0.1:6379/0`.
    pub url: String,
    /// `COPYDESK_KEY_PREFIX`: the namespace of every key (default `copydesk`). Tests use a
    /// unique prefix each so they can share one Redis.
    pub key_prefix: String,
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
            || url.starts_with("unix://"))
        {
            return Err(ConfigError::Invalid {
                var: "REDIS_URL",
                value: url,
                reason: "expected a redis://, rediss:// or unix:// URL".into(),
            });
        }
        let key_prefix = env
            .get("COPYDESK_KEY_PREFIX")
            .unwrap_or_else(|| "copydesk".into());
        Ok(Self { url, key_prefix })
    }

    /// The URL with any password replaced by `***` (for messages and logs).
    pub fn redacted_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &self.url[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{user}:***{}", &self.url[..scheme + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }
}

/// A secret value parsed from a variable; `Debug` never prints it.
pub fn secret(
    env: &dyn EnvSource,
    var: &'static str,
    hint: &'static str,
) -> Result<SecretString, ConfigError> {
    required(env, var, hint).map(SecretString::from)
}
