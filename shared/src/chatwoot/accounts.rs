//! [`ChatwootAccounts`]: one [`ChatwootClient`] per configured Chatwoot account, each with
//! that account's own API token, all sharing one pooled HTTP client. Every stage asks it for
//! the client of its job's account; an account without configuration is an
//! [`UnknownAccount`] error that names it, never a call made in another account.

use std::collections::BTreeMap;

use super::client::ChatwootClient;
use super::config::{endpoint_from_env, ChatwootConfig};
use super::error::ChatwootError;
use crate::accounts::{Accounts, ACCOUNTS_FILE_VAR};
use crate::config::{ConfigError, EnvSource};

/// The Chatwoot clients of every configured account.
#[derive(Debug, Clone)]
pub struct ChatwootAccounts {
    clients: BTreeMap<i64, ChatwootClient>,
    /// Accounts configured without an API token (webhooks only): named in errors.
    without_token: Vec<i64>,
}

/// A job names an account Copydesk has no Chatwoot configuration for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Chatwoot account {account} is not configured{}: no call is made for it in another \
     account; add it to COPYDESK_ACCOUNTS_FILE (with its api_token) to serve it (configured: {})",
    if *.without_token { " with an api_token" } else { "" },
    if .configured.is_empty() { "none".to_owned() } else {
        .configured.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
    }
)]
pub struct UnknownAccount {
    /// The account the job named.
    pub account: i64,
    /// True when the account is configured but has no API token.
    pub without_token: bool,
    /// The accounts that are configured with a token.
    pub configured: Vec<i64>,
}

impl ChatwootAccounts {
    /// A registry of one client (the one-account set-up, tests).
    pub fn single(client: ChatwootClient) -> Self {
        Self {
            clients: BTreeMap::from([(client.account_id(), client)]),
            without_token: Vec::new(),
        }
    }

    /// Clients for `configs` (one per account; a later config of the same account wins),
    /// sharing one HTTP client built with the first config's timeout.
    pub fn from_configs(configs: &[ChatwootConfig]) -> Result<Self, ChatwootError> {
        let timeout = configs
            .first()
            .map_or(super::config::DEFAULT_TIMEOUT, |c| c.timeout);
        let http = ChatwootClient::http_client(timeout)?;
        Ok(Self {
            clients: configs
                .iter()
                .map(|c| (c.account_id, ChatwootClient::with_http(http.clone(), c)))
                .collect(),
            without_token: Vec::new(),
        })
    }

    /// Reads `CHATWOOT_BASE_URL` (and the other account-independent `CHATWOOT_*`
    /// variables), then the accounts: from `COPYDESK_ACCOUNTS_FILE` when set (at least one
    /// with an `api_token`), else the one-account shorthand `CHATWOOT_ACCOUNT_ID` +
    /// `CHATWOOT_API_TOKEN` ([`ChatwootConfig::from_env`]).
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, anyhow::Error> {
        if env.get(ACCOUNTS_FILE_VAR).is_none() {
            return Ok(Self::single(ChatwootClient::new(
                &ChatwootConfig::from_env(env)?,
            )?));
        }
        let endpoint = endpoint_from_env(env)?;
        let accounts = Accounts::from_env(env)?;
        let configs: Vec<ChatwootConfig> = accounts
            .iter()
            .filter_map(|a| {
                a.api_token
                    .clone()
                    .map(|token| endpoint.for_account(a.id, token))
            })
            .collect();
        if configs.is_empty() {
            return Err(ConfigError::Invalid {
                var: ACCOUNTS_FILE_VAR,
                value: accounts.source().to_owned(),
                reason: "no account has an api_token, and this process calls Chatwoot".into(),
            }
            .into());
        }
        let mut registry = Self::from_configs(&configs)?;
        registry.without_token = accounts
            .iter()
            .filter(|a| a.api_token.is_none())
            .map(|a| a.id)
            .collect();
        Ok(registry)
    }

    /// The client of `account`, with that account's token.
    pub fn client(&self, account: i64) -> Result<&ChatwootClient, UnknownAccount> {
        self.clients.get(&account).ok_or_else(|| UnknownAccount {
            account,
            without_token: self.without_token.contains(&account),
            configured: self.account_ids(),
        })
    }

    /// The accounts with a client, ascending.
    pub fn account_ids(&self) -> Vec<i64> {
        self.clients.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn each_account_gets_its_own_client_and_an_unknown_one_is_named() {
        let config = |id, token: &str| {
            ChatwootConfig::new("http://127.0.0.1:9", SecretString::from(token), id)
                .expect("loopback")
        };
        let registry =
            ChatwootAccounts::from_configs(&[config(1, "t1"), config(2, "t2")]).expect("builds");
        assert_eq!(registry.account_ids(), vec![1, 2]);
        assert_eq!(registry.client(2).expect("configured").account_id(), 2);
        let err = registry.client(3).expect_err("not configured");
        assert_eq!(err.account, 3);
        let text = err.to_string();
        assert!(
            text.contains("account 3") && text.contains("1, 2"),
            "{text}"
        );
        assert!(!format!("{registry:?}").contains("t1"));
    }

    #[test]
    fn the_accounts_file_needs_an_api_token_for_a_chatwoot_caller() {
        let dir = std::env::temp_dir().join(format!("copydesk-cwacc-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("accounts.toml");
        std::fs::write(
            &path,
            "[[account]]\nid = 2\napi_token = { env = \"T2\" }\n[[account]]\nid = 3\nwebhook_secrets = [\"s\"]\n",
        )
        .expect("write");
        let env: std::collections::HashMap<String, String> = [
            ("CHATWOOT_BASE_URL", "http://127.0.0.1:9"),
            (ACCOUNTS_FILE_VAR, path.to_str().expect("utf-8")),
            ("T2", "token-two"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let registry = ChatwootAccounts::from_env(&env).expect("valid");
        assert_eq!(registry.account_ids(), vec![2]);
        let err = registry.client(3).expect_err("no token");
        assert!(err.without_token, "{err}");
        assert!(err.to_string().contains("account 3"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
