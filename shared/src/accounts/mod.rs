//! Chatwoot accounts and the credentials bound to each: its API token (every Chatwoot call for
//! the account's jobs), its webhook secret(s) (a webhook is accepted only when its signature
//! verifies with a secret of the account its body names) and, for older Chatwoot that cannot
//! sign webhooks, its legacy URL token (`/webhooks/chatwoot/{token}`).
//!
//! Two ways to configure them:
//!
//! - `COPYDESK_ACCOUNTS_FILE`: a TOML file, one `[[account]]` per Chatwoot account:
//!
//!   ```toml
//!   [[account]]
//!   id = 2
//!   api_token = { env = "CHATWOOT_TOKEN_2" }          # or "literal", or { file = "/path" }
//!   webhook_secrets = [{ file = "/var/run/secrets/copydesk/account-2/webhook" }]
//!   legacy_token = { env = "COPYDESK_LEGACY_TOKEN_2" } # optional, legacy mode only
//!   ```
//!
//!   Every secret is a literal string, `{ env = "VAR" }` (read from that variable) or
//!   `{ file = "/path" }` (the file's content without the trailing newline: a mounted
//!   Kubernetes secret). With the file, `COPYDESK_WEBHOOK_SECRETS`, `CHATWOOT_API_TOKEN` and
//!   `COPYDESK_LEGACY_WEBHOOK_TOKEN` must not be set (one source of truth).
//! - The one-account shorthand (no file): `CHATWOOT_ACCOUNT_ID`, `CHATWOOT_API_TOKEN`,
//!   `COPYDESK_WEBHOOK_SECRETS` (comma-separated) and `COPYDESK_LEGACY_WEBHOOK_TOKEN`. Without
//!   `CHATWOOT_ACCOUNT_ID` (an ingress of a single-account installation), the webhook secrets
//!   are bound to no account and accepted for any: the workers then still call only their
//!   own `CHATWOOT_ACCOUNT_ID` and refuse jobs of any other account.
//!
//! Secrets are [`SecretString`]s: `Debug` and every error print the account id and the
//! variable or file a secret comes from, never the secret.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ConfigError, EnvSource};

/// The variable naming the accounts file.
pub const ACCOUNTS_FILE_VAR: &str = "COPYDESK_ACCOUNTS_FILE";
/// The shorthand's legacy URL token variable.
pub const LEGACY_TOKEN_VAR: &str = "COPYDESK_LEGACY_WEBHOOK_TOKEN";
/// Shortest legacy URL token accepted: 32 characters (e.g. `openssl rand -hex 24` gives 48).
pub const MIN_LEGACY_TOKEN_LEN: usize = 32;

/// One Chatwoot account and its credentials. `Debug` shows which credentials are set, never
/// their values.
#[derive(Clone)]
pub struct Account {
    /// The Chatwoot account id (`/app/accounts/{id}/…`).
    pub id: i64,
    /// Its API access token (a user's or an agent bot's), if configured.
    pub api_token: Option<SecretString>,
    /// Its webhook secrets (several during a rotation or for several webhooks/bots).
    pub webhook_secrets: Vec<SecretString>,
    /// Its legacy URL token, if configured (see [`crate::accounts`]).
    pub legacy_token: Option<SecretString>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("api_token", &self.api_token.as_ref().map(|_| "<set>"))
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("legacy_token", &self.legacy_token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Every configured account, plus webhook secrets bound to no account (the shorthand without
/// `CHATWOOT_ACCOUNT_ID`).
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    accounts: Vec<Account>,
    unbound_secrets: Vec<SecretString>,
    /// Where they were read from, for messages: the file's path or `environment`.
    source: String,
}

impl Accounts {
    /// Accounts from a list (tests, embedders); ids must be unique.
    pub fn new(accounts: Vec<Account>) -> Result<Self, ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for account in &accounts {
            if account.id <= 0 || !seen.insert(account.id) {
                return Err(ConfigError::Invalid {
                    var: ACCOUNTS_FILE_VAR,
                    value: account.id.to_string(),
                    reason: "account ids must be positive and unique".into(),
                });
            }
            check_legacy_token(account.id, account.legacy_token.as_ref(), ACCOUNTS_FILE_VAR)?;
        }
        Ok(Self {
            accounts,
            unbound_secrets: Vec::new(),
            source: "configuration".into(),
        })
    }

    /// Only secrets bound to no account: any account's webhook signed with one passes (the
    /// single-account shorthand without `CHATWOOT_ACCOUNT_ID`).
    pub fn unbound(secrets: Vec<SecretString>) -> Self {
        Self {
            accounts: Vec::new(),
            unbound_secrets: secrets,
            source: "COPYDESK_WEBHOOK_SECRETS".into(),
        }
    }

    /// Reads `COPYDESK_ACCOUNTS_FILE` if set, else the shorthand variables (see the module
    /// docs). Nothing is required here: each user checks what it needs
    /// ([`Accounts::require_webhook_auth`], the Chatwoot registry).
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        match env.get(ACCOUNTS_FILE_VAR) {
            Some(path) => Self::from_file(env, path.trim()),
            None => Self::from_shorthand(env),
        }
    }

    fn from_shorthand(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let secrets = env
            .get("COPYDESK_WEBHOOK_SECRETS")
            .map(|text| parse_secrets(&text))
            .unwrap_or_default();
        let api_token = env.get("CHATWOOT_API_TOKEN").map(SecretString::from);
        let legacy_token = env.get(LEGACY_TOKEN_VAR).map(SecretString::from);
        let id = match env.get("CHATWOOT_ACCOUNT_ID") {
            None => None,
            Some(value) => match value.trim().parse::<i64>() {
                Ok(id) if id > 0 => Some(id),
                _ => {
                    return Err(ConfigError::Invalid {
                        var: "CHATWOOT_ACCOUNT_ID",
                        value,
                        reason: "expected a positive account id".into(),
                    })
                }
            },
        };
        let Some(id) = id else {
            if legacy_token.is_some() {
                return Err(ConfigError::Missing {
                    var: "CHATWOOT_ACCOUNT_ID",
                    hint: "COPYDESK_LEGACY_WEBHOOK_TOKEN is bound to an account: set \
                           CHATWOOT_ACCOUNT_ID (or use COPYDESK_ACCOUNTS_FILE)",
                });
            }
            return Ok(Self::unbound(secrets));
        };
        check_legacy_token(id, legacy_token.as_ref(), LEGACY_TOKEN_VAR)?;
        Ok(Self {
            accounts: vec![Account {
                id,
                api_token,
                webhook_secrets: secrets,
                legacy_token,
            }],
            unbound_secrets: Vec::new(),
            source: "environment".into(),
        })
    }

    fn from_file(env: &dyn EnvSource, path: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            var: ACCOUNTS_FILE_VAR,
            value: path.to_owned(),
            reason,
        };
        for var in [
            "COPYDESK_WEBHOOK_SECRETS",
            "CHATWOOT_API_TOKEN",
            LEGACY_TOKEN_VAR,
        ] {
            if env.get(var).is_some() {
                return Err(invalid(format!(
                    "{var} is set too: with an accounts file every secret lives in the file \
                     (use {{ env = \"{var}\" }} there to keep the variable)"
                )));
            }
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read it: {e}")))?;
        let file: AccountsFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            invalid(format!(
                "{}{}",
                line.map(|l| format!("line {l}: ")).unwrap_or_default(),
                redact_quoted(e.message())
            ))
        })?;
        if file.account.is_empty() {
            return Err(invalid("no [[account]] in the file".into()));
        }
        let mut accounts = Vec::with_capacity(file.account.len());
        for entry in file.account {
            let id = entry.id;
            let resolve = |what: &str, spec: &SecretSpec| {
                spec.resolve(env)
                    .map_err(|reason| invalid(format!("account {id}: {what}: {reason}")))
            };
            let api_token = entry
                .api_token
                .as_ref()
                .map(|s| resolve("api_token", s))
                .transpose()?;
            let mut webhook_secrets = Vec::new();
            for spec in &entry.webhook_secrets {
                webhook_secrets.push(resolve("webhook_secrets", spec)?);
            }
            let legacy_token = entry
                .legacy_token
                .as_ref()
                .map(|s| resolve("legacy_token", s))
                .transpose()?;
            accounts.push(Account {
                id,
                api_token,
                webhook_secrets,
                legacy_token,
            });
        }
        let mut accounts = Self::new(accounts).map_err(|e| match e {
            ConfigError::Invalid { value, reason, .. } => {
                invalid(format!("account {value}: {reason}"))
            }
            other => other,
        })?;
        accounts.source = path.to_owned();
        Ok(accounts)
    }

    /// Takes the secrets bound to no account out (they are kept apart in some configs).
    pub fn take_unbound_secrets(&mut self) -> Vec<SecretString> {
        std::mem::take(&mut self.unbound_secrets)
    }

    /// The same accounts plus `secrets` bound to no account.
    pub fn with_unbound_secrets(mut self, secrets: Vec<SecretString>) -> Self {
        self.unbound_secrets.extend(secrets);
        self
    }

    /// The configured accounts, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.accounts.iter()
    }

    /// The account with this id, if configured.
    pub fn get(&self, id: i64) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == id)
    }

    /// The configured account ids.
    pub fn ids(&self) -> Vec<i64> {
        self.accounts.iter().map(|a| a.id).collect()
    }

    /// True when no account and no unbound secret is configured.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.unbound_secrets.is_empty()
    }

    /// Where the accounts were read from (the file's path, or `environment`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The webhook secrets a payload naming `account` may be signed with: that account's,
    /// plus the unbound ones. A payload naming no account (or an unknown one) may only be
    /// signed with an unbound secret.
    pub fn webhook_secrets_for(&self, account: Option<i64>) -> Vec<&SecretString> {
        let bound = account
            .and_then(|id| self.get(id))
            .map(|a| a.webhook_secrets.iter())
            .into_iter()
            .flatten();
        bound.chain(self.unbound_secrets.iter()).collect()
    }

    /// The account whose legacy URL token is `token`, if any. Every configured token is
    /// compared, each in constant time (SHA-256 digests compared with `subtle`), so neither
    /// the position of a match nor a common prefix shows in the timing.
    pub fn account_for_legacy_token(&self, token: &str) -> Option<i64> {
        let presented = Sha256::digest(token.as_bytes());
        let mut found = None;
        for account in &self.accounts {
            let Some(expected) = &account.legacy_token else {
                continue;
            };
            let expected = Sha256::digest(expected.expose_secret().as_bytes());
            if bool::from(expected.as_slice().ct_eq(presented.as_slice())) {
                found = Some(account.id);
            }
        }
        found
    }

    /// True when any account has a legacy URL token.
    pub fn has_legacy_tokens(&self) -> bool {
        self.accounts.iter().any(|a| a.legacy_token.is_some())
    }

    /// An ingress needs a way to authenticate webhooks: some webhook secret, or (in legacy
    /// mode) some legacy token. The error names the variables to set.
    pub fn require_webhook_auth(&self, legacy_mode: bool) -> Result<(), ConfigError> {
        let secrets = !self.unbound_secrets.is_empty()
            || self.accounts.iter().any(|a| !a.webhook_secrets.is_empty());
        if secrets || (legacy_mode && self.has_legacy_tokens()) {
            return Ok(());
        }
        Err(ConfigError::Missing {
            var: "COPYDESK_WEBHOOK_SECRETS",
            hint: "set it to the secret(s) of your Chatwoot webhooks, comma-separated, or \
                   list each account's webhook_secrets in COPYDESK_ACCOUNTS_FILE",
        })
    }
}

/// A legacy token must be long enough to be unguessable.
fn check_legacy_token(
    id: i64,
    token: Option<&SecretString>,
    var: &'static str,
) -> Result<(), ConfigError> {
    match token {
        Some(token) if token.expose_secret().trim().chars().count() < MIN_LEGACY_TOKEN_LEN => {
            Err(ConfigError::Invalid {
                var,
                value: format!("<legacy token of account {id}, hidden>"),
                reason: format!(
                    "a legacy URL token must be at least {MIN_LEGACY_TOKEN_LEN} random \
                     characters (e.g. `openssl rand -hex 24`)"
                ),
            })
        }
        Some(token)
            if !token
                .expose_secret()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Err(ConfigError::Invalid {
                var,
                value: format!("<legacy token of account {id}, hidden>"),
                reason: "a legacy URL token is part of a URL path: use only letters, digits, \
                         `-` and `_`"
                    .into(),
            })
        }
        _ => Ok(()),
    }
}

/// serde messages quote the offending value (`invalid type: string "…"`): a secret in the
/// wrong place must not end up in an error, so quoted text is replaced by `"…"`.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside: Option<char> = None;
    for c in message.chars() {
        match inside {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                inside = None;
            }
            Some(_) => {}
            None if c == '"' || c == '\'' || c == '`' => {
                out.push(c);
                inside = Some(c);
            }
            None => out.push(c),
        }
    }
    if inside.is_some() {
        out.push('…');
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(default)]
    account: Vec<FileAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAccount {
    id: i64,
    #[serde(default)]
    api_token: Option<SecretSpec>,
    #[serde(default)]
    webhook_secrets: Vec<SecretSpec>,
    #[serde(default)]
    legacy_token: Option<SecretSpec>,
}

/// A secret in the accounts file: literal, from a variable, or from a file.
#[derive(Deserialize)]
#[serde(untagged)]
enum SecretSpec {
    Literal(String),
    Env { env: String },
    File { file: PathBuf },
}

impl SecretSpec {
    fn resolve(&self, env: &dyn EnvSource) -> Result<SecretString, String> {
        let value = match self {
            Self::Literal(value) => value.clone(),
            Self::Env { env: var } => env
                .get(var)
                .ok_or_else(|| format!("variable {var} is not set"))?,
            Self::File { file } => std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        };
        if value.trim().is_empty() {
            return Err("empty secret".into());
        }
        Ok(SecretString::from(value))
    }
}

/// Parses `COPYDESK_WEBHOOK_SECRETS`-style text: comma-separated, blanks trimmed and skipped.
pub fn parse_secrets(text: &str) -> Vec<SecretString> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(SecretString::from)
        .collect()
}

#[cfg(test)]
mod tests;
