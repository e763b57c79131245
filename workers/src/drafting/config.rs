//! `DraftingConfig`: the drafter backend and policy, read from the environment.

use std::time::Duration;

use copydesk::config::{millis_or, parsed_or, ConfigError, EnvSource};
use secrecy::SecretString;

use super::policy::DraftPolicy;

/// Default timeout of one chat completion: a small self-hosted model on CPU needs more than
/// half a minute for a Copydesk-sized prompt (several passages plus the conversation).
pub const DEFAULT_LLM_TIMEOUT: Duration = Duration::from_millis(120_000);

/// Default `COPYDESK_LLM_MAX_TOKENS`: room for a full reply with safety steps.
pub const DEFAULT_LLM_MAX_TOKENS: u32 = 600;

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
    /// `COPYDESK_LLM_TIMEOUT_MS` (default 120000): bound on one completion.
    pub timeout: Duration,
    /// `COPYDESK_LLM_MAX_TOKENS` (default 600, 16..=32768): the completion's length bound;
    /// a completion cut by it is flagged truncated.
    pub max_tokens: u32,
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
    /// `COPYDESK_LLM_TIMEOUT_MS` and `COPYDESK_LLM_MAX_TOKENS`.
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
                let max_tokens: u32 =
                    parsed_or(env, "COPYDESK_LLM_MAX_TOKENS", DEFAULT_LLM_MAX_TOKENS)?;
                if !(16..=32_768).contains(&max_tokens) {
                    return Err(ConfigError::Invalid {
                        var: "COPYDESK_LLM_MAX_TOKENS",
                        value: max_tokens.to_string(),
                        reason: "expected 16 to 32768 tokens".into(),
                    });
                }
                Some(LlmConfig {
                    url,
                    model: model.trim().to_owned(),
                    api_key: env.get("COPYDESK_LLM_API_KEY").map(SecretString::from),
                    timeout,
                    max_tokens,
                })
            }
        };
        Ok(Self { policy, llm })
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    use copydesk::config::env_of as env;

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
        assert_eq!(llm.timeout, DEFAULT_LLM_TIMEOUT);
        assert_eq!(llm.max_tokens, DEFAULT_LLM_MAX_TOKENS);
        assert!(!format!("{llm:?}").contains("sk-secret"));
    }

    #[test]
    fn max_tokens_is_read_and_bounded() {
        let base = [
            ("COPYDESK_LLM_URL", "http://llm/v1"),
            ("COPYDESK_LLM_MODEL", "m"),
        ];
        let with = |value: &'static str| {
            let mut pairs = base.to_vec();
            pairs.push(("COPYDESK_LLM_MAX_TOKENS", value));
            DraftingConfig::from_env(&env(&pairs))
        };
        let llm = with("256").expect("valid").llm.expect("llm");
        assert_eq!(llm.max_tokens, 256);
        for bad in ["0", "many", "100000"] {
            let err = with(bad).expect_err(bad);
            assert!(err.to_string().contains("COPYDESK_LLM_MAX_TOKENS"), "{err}");
        }
    }
}
