//! The ingress's configuration, read once from the environment in `main`.

pub mod console;

use std::net::SocketAddr;
use std::time::Duration;

use copydesk::accounts::Accounts;
use copydesk::config::{parsed_or, required, secs_or, ConfigError, EnvSource, RedisConfig};
use copydesk::queue::policy::allow_eviction_from_env;
use copydesk::signature::DEFAULT_TOLERANCE;
use secrecy::SecretString;

use crate::legacy::LegacyConfig;

use crate::spool::SpoolConfig;

/// Default `COPYDESK_LISTEN`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default `COPYDESK_MAX_BODY_BYTES`: 1 MiB, far above any real Chatwoot webhook (~5 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default `COPYDESK_SHUTDOWN_TIMEOUT_SECS`: well inside Kubernetes' 30 s grace period.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The operator ops API (`/api/...`): its own listener and bearer token. Configured only when
/// `COPYDESK_OPS_LISTEN` is set; without it the ingress serves no ops API at all.
#[derive(Debug, Clone)]
pub struct OpsConfig {
    /// `COPYDESK_OPS_LISTEN`, e.g. `127.0.0.1:8081`: keep it off the public webhook address.
    pub listen: SocketAddr,
    /// `COPYDESK_OPS_TOKEN`: operators send `Authorization: Bearer <token>`. Required once
    /// `COPYDESK_OPS_LISTEN` is set; never printed.
    pub token: SecretString,
    /// The operator console under `/ui/`, when `CHATWOOT_BASE_URL` and `CHATWOOT_ACCOUNT_ID`
    /// are set (see [`console::ConsoleConfig`]).
    pub console: Option<console::ConsoleConfig>,
}

/// Everything the ingress needs to run.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// `REDIS_URL`, `COPYDESK_KEY_PREFIX`.
    pub redis: RedisConfig,
    /// `COPYDESK_LISTEN`: the webhook listener (also serves `/livez`, `/readyz`, `/metrics`).
    pub listen: SocketAddr,
    /// `COPYDESK_METRICS_LISTEN`: an extra listener serving only `/metrics`, if set.
    pub metrics_listen: Option<SocketAddr>,
    /// `COPYDESK_WEBHOOK_SECRETS` when bound to no account (no `CHATWOOT_ACCOUNT_ID`, no
    /// accounts file): a signature valid for any of them passes for any account.
    pub webhook_secrets: Vec<SecretString>,
    /// `COPYDESK_ACCOUNTS_FILE`, or the shorthand with `CHATWOOT_ACCOUNT_ID`: each account's
    /// webhook secrets (a payload passes only with a secret of the account it names) and
    /// legacy URL token ([`copydesk::accounts`]).
    pub accounts: Accounts,
    /// `COPYDESK_LEGACY_WEBHOOKS=1`: also accept unsigned webhooks on
    /// `/webhooks/chatwoot/{legacy token}` (`None`: off, those paths answer 404).
    pub legacy: Option<LegacyConfig>,
    /// `COPYDESK_MAX_BODY_BYTES`: larger bodies get 413 without being buffered.
    pub max_body_bytes: usize,
    /// `COPYDESK_SIGNATURE_TOLERANCE_SECS`: how far the signed timestamp may be off.
    pub signature_tolerance: Duration,
    /// `COPYDESK_SHUTDOWN_TIMEOUT_SECS`: how long in-flight requests may take after SIGTERM.
    pub shutdown_timeout: Duration,
    // --- spool and Redis policy (issue 5) ---
    /// `COPYDESK_SPOOL_DIR` + `COPYDESK_SPOOL_MAX_BYTES` (default 256 MiB): where webhooks are
    /// kept (fsync'd, answered 202 `spooled`) while Redis is unreachable, drained when it is
    /// back. Unset `COPYDESK_SPOOL_DIR` (`None`): no spool, webhooks get 503 while Redis is down.
    /// See [`crate::spool`].
    pub spool: Option<SpoolConfig>,
    /// `COPYDESK_BURST_WINDOW_MS` / `COPYDESK_BURST_CAP_MS`: a customer's messages in one
    /// conversation within the window are drafted once, as one burst (see
    /// [`copydesk::queue::Burst`]).
    pub burst: copydesk::queue::Burst,
    /// `COPYDESK_ALLOW_EVICTION=1`: start even if Redis' `maxmemory-policy` is not
    /// `noeviction` (for managed Redis that does not let you change it); default: refuse.
    pub allow_eviction: bool,
    // --- end spool ---
    /// `COPYDESK_OPS_LISTEN` + `COPYDESK_OPS_TOKEN`: the ops API, if `COPYDESK_OPS_LISTEN` is
    /// set (`None`: no ops listener).
    pub ops: Option<OpsConfig>,
}

impl IngressConfig {
    /// Reads the variables above; the error names the variable and what is wrong with it.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let redis = RedisConfig::from_env(env)?;
        if env
            .get("COPYDESK_WEBHOOK_SECRETS")
            .is_some_and(|text| copydesk::signature::parse_secrets(&text).is_empty())
        {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_WEBHOOK_SECRETS",
                value: "<only separators>".into(),
                reason: "no secret in the comma-separated list".into(),
            });
        }
        let legacy = LegacyConfig::from_env(env)?;
        let mut accounts = Accounts::from_env(env)?;
        accounts.require_webhook_auth(legacy.is_some())?;
        let webhook_secrets = accounts.take_unbound_secrets();
        let default_listen: SocketAddr = DEFAULT_LISTEN
            .parse()
            .expect("DEFAULT_LISTEN is a socket address");
        let metrics_listen = match env.get("COPYDESK_METRICS_LISTEN") {
            None => None,
            Some(_) => Some(parsed_or(env, "COPYDESK_METRICS_LISTEN", default_listen)?),
        };
        let max_body_bytes = parsed_or(env, "COPYDESK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)?;
        if max_body_bytes == 0 {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_MAX_BODY_BYTES",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        let ops = match env.get("COPYDESK_OPS_LISTEN") {
            None => None,
            Some(_) => Some(OpsConfig {
                listen: parsed_or(env, "COPYDESK_OPS_LISTEN", default_listen)?,
                token: SecretString::from(required(
                    env,
                    "COPYDESK_OPS_TOKEN",
                    "COPYDESK_OPS_LISTEN is set, so the ops API needs a bearer token: set it to a long random secret",
                )?),
                console: console::ConsoleConfig::from_env(env)?,
            }),
        };
        Ok(Self {
            redis,
            spool: SpoolConfig::from_env(env)?,
            burst: copydesk::queue::Burst::from_env(env)?,
            allow_eviction: allow_eviction_from_env(env)?,
            listen: parsed_or(env, "COPYDESK_LISTEN", default_listen)?,
            metrics_listen,
            webhook_secrets,
            accounts,
            legacy,
            max_body_bytes,
            signature_tolerance: secs_or(
                env,
                "COPYDESK_SIGNATURE_TOLERANCE_SECS",
                DEFAULT_TOLERANCE,
            )?,
            shutdown_timeout: secs_or(
                env,
                "COPYDESK_SHUTDOWN_TIMEOUT_SECS",
                DEFAULT_SHUTDOWN_TIMEOUT,
            )?,
            ops,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) use copydesk::config::env_of as env;

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let config = IngressConfig::from_env(&env(&[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("COPYDESK_WEBHOOK_SECRETS", "a,b"),
        ]))
        .expect("valid config");
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.webhook_secrets.len(), 2);
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(config.signature_tolerance, Duration::from_secs(300));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        assert!(config.metrics_listen.is_none());
        assert!(
            config.ops.is_none(),
            "no ops API unless COPYDESK_OPS_LISTEN is set"
        );
    }

    #[test]
    fn ops_listen_without_a_token_names_the_token_variable() {
        let err = IngressConfig::from_env(&env(&[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("COPYDESK_WEBHOOK_SECRETS", "s"),
            ("COPYDESK_OPS_LISTEN", "127.0.0.1:8081"),
        ]))
        .expect_err("no ops token");
        assert!(err.to_string().contains("COPYDESK_OPS_TOKEN"), "{err}");
        let config = IngressConfig::from_env(&env(&[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("COPYDESK_WEBHOOK_SECRETS", "s"),
            ("COPYDESK_OPS_LISTEN", "127.0.0.1:8081"),
            ("COPYDESK_OPS_TOKEN", "very-secret-ops-token"),
        ]))
        .expect("valid ops config");
        let ops = config.ops.expect("ops configured");
        assert_eq!(ops.listen.to_string(), "127.0.0.1:8081");
        assert!(
            !format!("{ops:?}").contains("very-secret-ops-token"),
            "Debug never prints the token"
        );
    }

    #[test]
    fn missing_secrets_name_the_variable() {
        let err = IngressConfig::from_env(&env(&[("REDIS_URL", "redis://127.0.0.1:1")]))
            .expect_err("no secrets");
        assert!(
            err.to_string().contains("COPYDESK_WEBHOOK_SECRETS"),
            "{err}"
        );
        let err = IngressConfig::from_env(&env(&[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("COPYDESK_WEBHOOK_SECRETS", "s"),
            ("COPYDESK_LISTEN", "everywhere"),
        ]))
        .expect_err("bad listen");
        assert!(err.to_string().contains("COPYDESK_LISTEN"), "{err}");
    }
}
