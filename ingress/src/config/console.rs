//! The console's configuration: which Chatwoot verifies operators, how long sessions last,
//! cookie and framing policy, and the teams an operator may escalate to.

use std::time::Duration;

use copydesk::config::{parsed_or, secs_or, ConfigError, EnvSource};
use serde::Deserialize;

/// Default `COPYDESK_SESSION_TTL_SECS`: 12 h, sliding.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
/// Default `COPYDESK_UI_SIGNIN_PER_MINUTE`: sign-in attempts per client address per minute.
pub const DEFAULT_SIGNIN_PER_MINUTE: u32 = 10;
/// The routing table the workers fall back to; its teams are the default escalation targets.
const BUILT_IN_ROUTING: &str = include_str!("../../../deploy/routing.example.toml");

/// The operator console (`/ui/`), served on the ops listener when `CHATWOOT_BASE_URL` and
/// `CHATWOOT_ACCOUNT_ID` are set.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleConfig {
    /// `CHATWOOT_BASE_URL` without a trailing slash: sign-in calls its `GET /api/v1/profile`,
    /// and the queue links to its conversations.
    pub chatwoot_base_url: String,
    /// `CHATWOOT_ACCOUNT_ID`: an operator must be a member of this account (or of one of
    /// [`Self::other_account_ids`]).
    pub account_id: i64,
    /// The other accounts of `COPYDESK_ACCOUNTS_FILE`: members of any of them may sign in.
    pub other_account_ids: Vec<i64>,
    /// `COPYDESK_SESSION_TTL_SECS` (default 12 h): idle time after which a session ends.
    pub session_ttl: Duration,
    /// `COPYDESK_UI_INSECURE_COOKIES=1`: leave `Secure` off the cookie (plain-http demo only).
    pub insecure_cookies: bool,
    /// `COPYDESK_UI_FRAME_ANCESTORS` (space or comma separated origins; default: the origin of
    /// `CHATWOOT_BASE_URL`): who may frame the console, and whose `appContext` messages the
    /// Dashboard App accepts.
    pub frame_ancestors: Vec<String>,
    /// `COPYDESK_UI_SIGNIN_PER_MINUTE` (default 10): sign-in attempts per client address.
    pub signin_per_minute: u32,
    /// The teams of `COPYDESK_ROUTING_FILE` (or of the built-in routing table): the only
    /// escalation targets offered and accepted.
    pub teams: Vec<String>,
}

impl ConsoleConfig {
    /// A console for `chatwoot_base_url` and `account_id` with every default.
    pub fn new(chatwoot_base_url: &str, account_id: i64) -> Self {
        let base = chatwoot_base_url.trim().trim_end_matches('/').to_owned();
        Self {
            frame_ancestors: origin_of(&base).into_iter().collect(),
            chatwoot_base_url: base,
            account_id,
            other_account_ids: Vec::new(),
            session_ttl: DEFAULT_SESSION_TTL,
            insecure_cookies: false,
            signin_per_minute: DEFAULT_SIGNIN_PER_MINUTE,
            teams: teams_of_toml(BUILT_IN_ROUTING).unwrap_or_default(),
        }
    }

    /// Whether an operator who is a member of `account_id` may sign in.
    pub fn serves_account(&self, account_id: i64) -> bool {
        self.account_id == account_id || self.other_account_ids.contains(&account_id)
    }

    /// `None` unless `CHATWOOT_BASE_URL` and `CHATWOOT_ACCOUNT_ID` (or
    /// `COPYDESK_ACCOUNTS_FILE`) are both set.
    pub fn from_env(env: &dyn EnvSource) -> Result<Option<Self>, ConfigError> {
        let file_accounts = match env.get(copydesk::accounts::ACCOUNTS_FILE_VAR) {
            Some(_) => copydesk::accounts::Accounts::from_env(env)?.ids(),
            None => Vec::new(),
        };
        let Some(base) = env.get("CHATWOOT_BASE_URL") else {
            return Ok(None);
        };
        if env.get("CHATWOOT_ACCOUNT_ID").is_none() && file_accounts.is_empty() {
            return Ok(None);
        }
        if origin_of(&base).is_none() {
            return Err(ConfigError::Invalid {
                var: "CHATWOOT_BASE_URL",
                value: base,
                reason: "not an http(s) URL".into(),
            });
        }
        let first = file_accounts.first().copied().unwrap_or(0);
        let mut config = Self::new(&base, parsed_or(env, "CHATWOOT_ACCOUNT_ID", first)?);
        config.other_account_ids = file_accounts
            .into_iter()
            .filter(|id| *id != config.account_id)
            .collect();
        config.session_ttl = secs_or(env, "COPYDESK_SESSION_TTL_SECS", DEFAULT_SESSION_TTL)?;
        if config.session_ttl.is_zero() {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_SESSION_TTL_SECS",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        config.insecure_cookies = env
            .get("COPYDESK_UI_INSECURE_COOKIES")
            .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
        config.signin_per_minute = parsed_or(
            env,
            "COPYDESK_UI_SIGNIN_PER_MINUTE",
            DEFAULT_SIGNIN_PER_MINUTE,
        )?;
        if let Some(list) = env.get("COPYDESK_UI_FRAME_ANCESTORS") {
            let mut origins = Vec::new();
            for item in list.split([' ', ',']).filter(|s| !s.trim().is_empty()) {
                origins.push(origin_of(item).ok_or_else(|| ConfigError::Invalid {
                    var: "COPYDESK_UI_FRAME_ANCESTORS",
                    value: item.to_owned(),
                    reason: "not an http(s) origin such as https://chatwoot.example.com".into(),
                })?);
            }
            config.frame_ancestors = origins;
        }
        if let Some(path) = env.get("COPYDESK_ROUTING_FILE") {
            config.teams = read_teams(&path).map_err(|reason| ConfigError::Invalid {
                var: "COPYDESK_ROUTING_FILE",
                value: path.clone(),
                reason,
            })?;
        }
        Ok(Some(config))
    }

    /// Whether `origin` (a browser's `Origin` / `event.origin`) is a configured Chatwoot.
    pub fn allows_frame_origin(&self, origin: &str) -> bool {
        self.frame_ancestors.iter().any(|o| o == origin)
    }
}

/// `scheme://host[:port]` of an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url.trim()).ok()?;
    matches!(parsed.scheme(), "http" | "https")
        .then(|| parsed.origin().ascii_serialization())
        .filter(|origin| origin != "null")
}

#[derive(Deserialize)]
struct TeamsOnly {
    #[serde(default)]
    teams: Vec<TeamName>,
}

#[derive(Deserialize)]
struct TeamName {
    name: String,
}

fn teams_of_toml(text: &str) -> Result<Vec<String>, String> {
    let parsed: TeamsOnly = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(parsed.teams.into_iter().map(|t| t.name).collect())
}

/// The team names of a routing file (TOML, or YAML when named `*.yaml`/`*.yml`).
pub fn teams_of_file(path: &std::path::Path) -> Result<Vec<String>, String> {
    read_teams(&path.display().to_string())
}

fn read_teams(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    if path.ends_with(".yaml") || path.ends_with(".yml") {
        let parsed: TeamsOnly = serde_norway::from_str(&text).map_err(|e| e.to_string())?;
        Ok(parsed.teams.into_iter().map(|t| t.name).collect())
    } else {
        teams_of_toml(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::*;

    #[test]
    fn defaults_follow_the_chatwoot_url() {
        let config = ConsoleConfig::from_env(&env(&[
            ("CHATWOOT_BASE_URL", "https://chat.example.com/"),
            ("CHATWOOT_ACCOUNT_ID", "3"),
        ]))
        .expect("valid")
        .expect("configured");
        assert_eq!(config.chatwoot_base_url, "https://chat.example.com");
        assert_eq!(config.frame_ancestors, vec!["https://chat.example.com"]);
        assert_eq!(config.session_ttl, DEFAULT_SESSION_TTL);
        assert!(!config.insecure_cookies);
        assert!(
            config.teams.iter().any(|t| t == "Safety"),
            "{:?}",
            config.teams
        );
        assert!(ConsoleConfig::from_env(&env(&[])).expect("valid").is_none());
    }

    #[test]
    fn bad_frame_ancestors_name_the_variable() {
        let err = ConsoleConfig::from_env(&env(&[
            ("CHATWOOT_BASE_URL", "https://chat.example.com"),
            ("CHATWOOT_ACCOUNT_ID", "3"),
            (
                "COPYDESK_UI_FRAME_ANCESTORS",
                "https://a.example, javascript:x",
            ),
        ]))
        .expect_err("invalid");
        assert!(
            err.to_string().contains("COPYDESK_UI_FRAME_ANCESTORS"),
            "{err}"
        );
    }
}
