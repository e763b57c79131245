//! The startup check that Redis will not evict Copydesk's keys: `maxmemory-policy` must be
//! `noeviction`.
//!
//! Every Copydesk key is work someone waits for: stream entries (jobs), approvals, dead letters,
//! conversation states, and the TTL'd keys that keep side effects exactly-once (webhook dedupe
//! keys, idempotency claims). Under memory pressure:
//! - `allkeys-*` policies delete any of them, queued jobs included, silently;
//! - `volatile-*` policies delete only keys with a TTL, which are exactly the dedupe and
//!   idempotency keys: a re-sent webhook would then start a second pipeline and a retried
//!   reply could be posted twice. So they are refused too.
//!
//! With `noeviction` a full Redis refuses writes (`OOM`) instead: the ingress spools to disk
//! and answers 202, alerts fire on queue depth, and nothing accepted is lost. The production
//! settings are in `deploy/redis/redis.conf`.
//!
//! Managed Redis services often forbid `CONFIG`: the check then logs a warning and passes.
//! When the policy cannot be changed, `COPYDESK_ALLOW_EVICTION=1` turns the refusal into a
//! warning ([`enforce_eviction_policy`]); every binary reads it with
//! [`allow_eviction_from_env`].

use std::time::Duration;

use redis::{ErrorKind, RedisError};

use super::{QueueClient, QueueError};
use crate::config::{ConfigError, EnvSource};

/// The only `maxmemory-policy` Copydesk runs on without an override.
pub const REQUIRED_POLICY: &str = "noeviction";
/// The variable that turns a refused policy into a warning.
pub const ALLOW_EVICTION_VAR: &str = "COPYDESK_ALLOW_EVICTION";
/// How long the check waits for `CONFIG GET` (startup must not hang on an unreachable Redis).
pub const POLICY_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads `maxmemory-policy` and fails unless it is `noeviction`.
///
/// - `noeviction` → `Ok`.
/// - any other policy → [`QueueError::EvictionPolicy`], whose message says what to change.
/// - `CONFIG` refused (ACL `NOPERM`, a renamed or disabled command on managed Redis) → a
///   warning is logged and the check passes: the policy cannot be known.
/// - Redis unreachable or too slow ([`POLICY_CHECK_TIMEOUT`]) →
///   [`QueueError::RedisUnavailable`]; the caller decides whether to start anyway.
pub async fn check_eviction_policy(queue: &QueueClient) -> Result<(), QueueError> {
    let mut conn = queue.connection();
    let mut command = redis::cmd("CONFIG");
    command.arg("GET").arg("maxmemory-policy");
    let query = command.query_async::<redis::Value>(&mut conn);
    let answer = match tokio::time::timeout(POLICY_CHECK_TIMEOUT, query).await {
        Ok(answer) => answer,
        Err(_) => {
            return Err(QueueError::RedisUnavailable(RedisError::from(
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "CONFIG GET maxmemory-policy did not answer in time",
                ),
            )))
        }
    };
    let value = match answer {
        Ok(value) => value,
        Err(error) if config_refused(&error) => {
            tracing::warn!(
                error = %error,
                "cannot read Redis maxmemory-policy (CONFIG is not permitted); make sure it is \
                 `noeviction`, or Redis may evict queued jobs and dedupe keys under memory pressure"
            );
            return Ok(());
        }
        Err(error) => return Err(QueueError::RedisUnavailable(error)),
    };
    match policy_of(&value) {
        Some(policy) if policy.eq_ignore_ascii_case(REQUIRED_POLICY) => Ok(()),
        Some(policy) => Err(QueueError::EvictionPolicy { policy }),
        None => {
            tracing::warn!(
                answer = ?value,
                "Redis did not report maxmemory-policy; make sure it is `noeviction`"
            );
            Ok(())
        }
    }
}

/// What a process does at startup: [`check_eviction_policy`], except that an unreachable
/// Redis is logged and tolerated (processes start before Redis and wait for it), and with
/// `allow_eviction` (`COPYDESK_ALLOW_EVICTION=1`) a wrong policy is only logged.
pub async fn enforce_eviction_policy(
    queue: &QueueClient,
    allow_eviction: bool,
) -> Result<(), QueueError> {
    match check_eviction_policy(queue).await {
        Ok(()) => Ok(()),
        Err(QueueError::EvictionPolicy { policy }) if allow_eviction => {
            tracing::warn!(
                policy,
                "Redis maxmemory-policy is not `noeviction`; starting anyway because \
                 {ALLOW_EVICTION_VAR} is set. Under memory pressure Redis may delete queued \
                 jobs or dedupe keys"
            );
            Ok(())
        }
        Err(QueueError::RedisUnavailable(error)) => {
            tracing::warn!(
                error = %error,
                "Redis unreachable at startup: maxmemory-policy not checked"
            );
            Ok(())
        }
        Err(other) => Err(other),
    }
}

/// `COPYDESK_ALLOW_EVICTION`: `1`/`true`/`yes` or `0`/`false`/`no`; unset means no.
pub fn allow_eviction_from_env(env: &dyn EnvSource) -> Result<bool, ConfigError> {
    let Some(value) = env.get(ALLOW_EVICTION_VAR) else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Invalid {
            var: ALLOW_EVICTION_VAR,
            value,
            reason: "expected 1 or 0 (or true/false)".into(),
        }),
    }
}

/// `CONFIG` is there but not for us: ACL (`NOPERM`), or renamed/disabled (`ERR unknown
/// command`). Connection problems are not this.
fn config_refused(error: &RedisError) -> bool {
    match error.kind() {
        ErrorKind::Server(redis::ServerErrorKind::NoPerm) => true,
        ErrorKind::Server(redis::ServerErrorKind::ResponseError) | ErrorKind::Extension => {
            !error.is_io_error()
        }
        _ => false,
    }
}

/// The policy in a `CONFIG GET` answer: a flat `[name, value]` array (RESP2) or a map (RESP3).
fn policy_of(value: &redis::Value) -> Option<String> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match value {
        redis::Value::Array(items) => items.chunks(2).find_map(|pair| match pair {
            [name, value] if text(name).as_deref() == Some("maxmemory-policy") => text(value),
            _ => None,
        }),
        redis::Value::Map(pairs) => pairs.iter().find_map(|(name, value)| {
            (text(name).as_deref() == Some("maxmemory-policy"))
                .then(|| text(value))
                .flatten()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn bulk(s: &str) -> redis::Value {
        redis::Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn the_policy_is_read_from_resp2_and_resp3_answers() {
        let resp2 = redis::Value::Array(vec![bulk("maxmemory-policy"), bulk("allkeys-lru")]);
        let resp3 = redis::Value::Map(vec![(bulk("maxmemory-policy"), bulk("noeviction"))]);
        assert_eq!(policy_of(&resp2).as_deref(), Some("allkeys-lru"));
        assert_eq!(policy_of(&resp3).as_deref(), Some("noeviction"));
        assert_eq!(policy_of(&redis::Value::Array(vec![])), None);
    }

    #[test]
    fn the_refusal_names_the_setting_and_the_way_out() {
        let message = QueueError::EvictionPolicy {
            policy: "volatile-lru".into(),
        }
        .to_string();
        assert!(message.contains("maxmemory-policy noeviction"), "{message}");
        assert!(message.contains("volatile-lru"), "{message}");
        assert!(message.contains(ALLOW_EVICTION_VAR), "{message}");
    }

    #[test]
    fn allow_eviction_accepts_one_and_zero_and_names_the_variable_otherwise() {
        let env = |v: &str| HashMap::from([(ALLOW_EVICTION_VAR.to_owned(), v.to_owned())]);
        assert!(!allow_eviction_from_env(&HashMap::new()).expect("unset is valid"));
        assert!(allow_eviction_from_env(&env("1")).expect("1 is valid"));
        assert!(!allow_eviction_from_env(&env("0")).expect("0 is valid"));
        let err = allow_eviction_from_env(&env("maybe")).expect_err("maybe is not a flag");
        assert!(err.to_string().contains(ALLOW_EVICTION_VAR), "{err}");
    }
}
