//! `DraftingConfig`: the drafter backend and policy, read from the environment.

use std::time::Duration;

use copydesk::config::{millis_or, ConfigError, EnvSource};
use secrecy::SecretString;

use super::policy::DraftPolicy;

/// Default timeout of one chat completion.
pub const DEFAULT_LLM_TIMEOUT: Duration = Duration::from_millis(30_000);

/// An OpenAI-compatible chat completions endpoint.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// `COPYDESK_LLM_URL`: the API base, e.g. `https://api.openai.com/v1`
    /// (`/chat/completions` is appended).
    pub url: String,
    /// `COPYDESK_LLM_MODEL`.
    pub model: String,
    /// `COPYDESK_LLM_API_KEY`, sent as a bearer token (optional for local servers).
    pub api_key: Option<SecretString>,
    /// `COPYDESK_LLM_TIMEOUT_MS` (default 30000): bound on one completion.
    pub timeout: Duration,
}

/// The drafting section of a worker's config.
#[derive(Debug, Clone)]
pub struct DraftingConfig {
    /// Classification thresholds and word lists.
    pub policy: DraftPolicy,
    /// The LLM backend, when `COPYDESK_LLM_URL` is set; otherwise the extractive drafter.
    pub llm: Option<LlmConfig>,
}

impl DraftingConfig {
    /// Reads the policy ([`DraftPolicy::from_env`]) and, when `COPYDESK_LLM_URL` is set,
    /// `COPYDESK_LLM_MODEL` (then required), `COPYDESK_LLM_API_KEY` and
    /// `COPYDESK_LLM_TIMEOUT_MS`.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let policy = DraftPolicy::from_env(env)?;
        let llm = match env.get("COPYDESK_LLM_URL") {
            None => None,
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        var: "COPYDESK_LLM_URL",
                        value: url,
                        reason: "expected the http(s) base URL of an OpenAI-compatible API".into(),
                    });
                }
                let model = copydesk::config::required(
                    env,
                    "COPYDESK_LLM_MODEL",
                    "set the model name when COPYDESK_LLM_URL is set, e.g. gpt-4o-mini",
                )?;
                let timeout = millis_or(env, "COPYDESK_LLM_TIMEOUT_MS", DEFAULT_LLM_TIMEOUT)?;
                if timeout.is_zero() {
                    return Err(ConfigError::Invalid {
                        var: "COPYDESK_LLM_TIMEOUT_MS",
                        value: "0".into(),
                        reason: "a timeout must be at least 1 ms".into(),
                    });
                }
                Some(LlmConfig {
                    url,
                    model: model.trim().to_owned(),
                    api_key: env.get("COPYDESK_LLM_API_KEY").map(SecretString::from),
                    timeout,
                })
            }
        };
        Ok(Self { policy, llm })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_configuration_means_the_extractive_drafter() {
        let config = DraftingConfig::from_env(&env(&[])).expect("defaults work");
        assert!(config.llm.is_none());
        assert_eq!(config.policy, DraftPolicy::default());
    }

    #[test]
    fn an_llm_url_requires_a_model_and_keeps_the_key_secret() {
        let err = DraftingConfig::from_env(&env(&[("COPYDESK_LLM_URL", "http://llm/v1")]))
            .expect_err("model missing");
        assert!(err.to_string().contains("COPYDESK_LLM_MODEL"), "{err}");

        let config = DraftingConfig::from_env(&env(&[
            ("COPYDESK_LLM_URL", "http://llm/v1/"),
            ("COPYDESK_LLM_MODEL", "small"),
            ("COPYDESK_LLM_API_KEY", "sk-secret"),
        ]))
        .expect("valid");
        let llm = config.llm.expect("llm configured");
        assert_eq!(llm.url, "http://llm/v1");
        assert!(!format!("{llm:?}").contains("sk-secret"));
    }
}
