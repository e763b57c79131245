//! `KnowledgeConfig`: which knowledge backend to use, read from the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use copydesk::config::{millis_or, parsed_or, ConfigError, EnvSource};
use secrecy::{ExposeSecret, SecretString};

use super::llamaindex::ScoreKind;
use super::DEFAULT_TOP_K;

/// Default timeout of one HTTP retrieve call.
pub const DEFAULT_KNOWLEDGE_TIMEOUT: Duration = Duration::from_millis(5_000);

/// The default knowledge folder, relative to the working directory.
const DEFAULT_KNOWLEDGE_DIR: &str = "knowledge";

/// Where knowledge comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KnowledgeSource {
    /// A folder of `.md`/`.txt` files, indexed in RAM.
    Directory(PathBuf),
    /// A LlamaIndex retrieve endpoint (see [`super::HttpRetriever`]).
    Url(HttpKnowledge),
}

/// The HTTP retriever's settings.
#[derive(Debug, Clone)]
pub struct HttpKnowledge {
    /// The endpoint (`POST`), `COPYDESK_KNOWLEDGE_URL`.
    pub url: String,
    /// Bound on one call, `COPYDESK_KNOWLEDGE_TIMEOUT_MS`.
    pub timeout: Duration,
    /// Bearer key, `COPYDESK_KNOWLEDGE_API_KEY` (LlamaCloud's `llx-…` key).
    pub api_key: Option<SecretString>,
    /// What the scores mean, `COPYDESK_KNOWLEDGE_SCORE`.
    pub score: ScoreKind,
}

impl PartialEq for HttpKnowledge {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
            && self.timeout == other.timeout
            && self.score == other.score
            && self.api_key.as_ref().map(ExposeSecret::expose_secret)
                == other.api_key.as_ref().map(ExposeSecret::expose_secret)
    }
}

impl Eq for HttpKnowledge {}

/// The knowledge section of a worker's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeConfig {
    /// Where passages come from.
    pub source: KnowledgeSource,
    /// Passages per lookup.
    pub top_k: usize,
}

impl KnowledgeConfig {
    /// Reads `COPYDESK_KNOWLEDGE_URL` (wins when set; `COPYDESK_KNOWLEDGE_TIMEOUT_MS`, default
    /// 5000; `COPYDESK_KNOWLEDGE_API_KEY`; `COPYDESK_KNOWLEDGE_SCORE` = `cosine`, `bm25` or
    /// `auto`, the default), else `COPYDESK_KNOWLEDGE_DIR` (default `knowledge`, falling back to the
    /// repository's sample folder when `./knowledge` does not exist), and
    /// `COPYDESK_KNOWLEDGE_TOP_K` (default 4, 1..=50).
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let top_k: usize = parsed_or(env, "COPYDESK_KNOWLEDGE_TOP_K", DEFAULT_TOP_K)?;
        if !(1..=50).contains(&top_k) {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_KNOWLEDGE_TOP_K",
                value: top_k.to_string(),
                reason: "expected 1 to 50 passages".into(),
            });
        }
        let source = match env.get("COPYDESK_KNOWLEDGE_URL") {
            Some(url) => {
                let url = url.trim().to_owned();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        var: "COPYDESK_KNOWLEDGE_URL",
                        value: url,
                        reason: "expected an http:// or https:// URL of the retrieve endpoint"
                            .into(),
                    });
                }
                let timeout = millis_or(
                    env,
                    "COPYDESK_KNOWLEDGE_TIMEOUT_MS",
                    DEFAULT_KNOWLEDGE_TIMEOUT,
                )?;
                if timeout.is_zero() {
                    return Err(ConfigError::Invalid {
                        var: "COPYDESK_KNOWLEDGE_TIMEOUT_MS",
                        value: "0".into(),
                        reason: "a timeout must be at least 1 ms".into(),
                    });
                }
                let score = match env.get("COPYDESK_KNOWLEDGE_SCORE") {
                    None => ScoreKind::Auto,
                    Some(value) => value.parse().map_err(|reason| ConfigError::Invalid {
                        var: "COPYDESK_KNOWLEDGE_SCORE",
                        value,
                        reason,
                    })?,
                };
                let api_key = env
                    .get("COPYDESK_KNOWLEDGE_API_KEY")
                    .map(|k| k.trim().to_owned())
                    .filter(|k| !k.is_empty())
                    .map(SecretString::from);
                KnowledgeSource::Url(HttpKnowledge {
                    url,
                    timeout,
                    api_key,
                    score,
                })
            }
            None => {
                let dir = match env.get("COPYDESK_KNOWLEDGE_DIR") {
                    Some(dir) => PathBuf::from(dir.trim()),
                    None => default_dir(),
                };
                if !dir.is_dir() {
                    return Err(ConfigError::Invalid {
                        var: "COPYDESK_KNOWLEDGE_DIR",
                        value: dir.display().to_string(),
                        reason: "not a readable folder of .md/.txt knowledge files".into(),
                    });
                }
                KnowledgeSource::Directory(dir)
            }
        };
        Ok(Self { source, top_k })
    }
}

/// `./knowledge` when it exists, else the sample folder of the source tree this was built
/// from, so a binary started anywhere on a dev machine still finds knowledge.
fn default_dir() -> PathBuf {
    let local = PathBuf::from(DEFAULT_KNOWLEDGE_DIR);
    if local.is_dir() {
        return local;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(DEFAULT_KNOWLEDGE_DIR);
    if repo.is_dir() {
        repo
    } else {
        local
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    use copydesk::config::env_of as env;

    #[test]
    fn no_configuration_means_the_sample_folder() {
        let config = KnowledgeConfig::from_env(&env(&[])).expect("defaults work");
        let KnowledgeSource::Directory(dir) = config.source else {
            panic!("expected a directory source");
        };
        assert!(dir.join("faq.md").is_file(), "{}", dir.display());
        assert_eq!(config.top_k, DEFAULT_TOP_K);
    }

    #[test]
    fn a_url_wins_and_takes_a_timeout() {
        let config = KnowledgeConfig::from_env(&env(&[
            ("COPYDESK_KNOWLEDGE_URL", "http://rag:8000/retrieve"),
            ("COPYDESK_KNOWLEDGE_TIMEOUT_MS", "1500"),
            ("COPYDESK_KNOWLEDGE_DIR", "/nonexistent"),
            ("COPYDESK_KNOWLEDGE_API_KEY", "llx-secret"),
            ("COPYDESK_KNOWLEDGE_SCORE", "bm25"),
        ]))
        .expect("valid");
        assert_eq!(
            config.source,
            KnowledgeSource::Url(HttpKnowledge {
                url: "http://rag:8000/retrieve".into(),
                timeout: Duration::from_millis(1500),
                api_key: Some(SecretString::from("llx-secret")),
                score: ScoreKind::Bm25,
            })
        );
        assert!(!format!("{config:?}").contains("llx-secret"));
    }

    #[test]
    fn errors_name_the_variable() {
        for (pairs, var) in [
            (
                vec![("COPYDESK_KNOWLEDGE_DIR", "/nonexistent/kb")],
                "COPYDESK_KNOWLEDGE_DIR",
            ),
            (
                vec![("COPYDESK_KNOWLEDGE_URL", "rag:8000")],
                "COPYDESK_KNOWLEDGE_URL",
            ),
            (
                vec![("COPYDESK_KNOWLEDGE_TOP_K", "zero")],
                "COPYDESK_KNOWLEDGE_TOP_K",
            ),
            (
                vec![("COPYDESK_KNOWLEDGE_TOP_K", "0")],
                "COPYDESK_KNOWLEDGE_TOP_K",
            ),
            (
                vec![
                    ("COPYDESK_KNOWLEDGE_URL", "http://x"),
                    ("COPYDESK_KNOWLEDGE_TIMEOUT_MS", "x"),
                ],
                "COPYDESK_KNOWLEDGE_TIMEOUT_MS",
            ),
            (
                vec![
                    ("COPYDESK_KNOWLEDGE_URL", "http://x"),
                    ("COPYDESK_KNOWLEDGE_SCORE", "dot"),
                ],
                "COPYDESK_KNOWLEDGE_SCORE",
            ),
        ] {
            let err = KnowledgeConfig::from_env(&env(&pairs)).expect_err("invalid");
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
