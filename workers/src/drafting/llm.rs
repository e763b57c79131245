//! The LLM drafter: an OpenAI-compatible `POST {url}/chat/completions` with a prompt that
//! numbers the passages, shows the recent conversation and asks for cited answers.

use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::config::LlmConfig;
use super::error::DraftError;
use super::extractive::Composition;
use super::request::DraftRequest;
use super::safety_steps::safety_block;

/// Sampling temperature: low, drafts should stick to the passages.
const TEMPERATURE: f32 = 0.2;

/// Longest error body quoted in an error message.
const MAX_ERROR_BODY_CHARS: usize = 200;

/// Instructions given to the model with every request.
const SYSTEM_PROMPT: &str = "You draft replies for the customer support team of a shop. \
An operator reviews every draft before it is sent.
Rules:
- Answer only from the numbered knowledge passages; cite each passage you use as [n].
- If the passages do not answer the question, say so briefly and that a member of the team will follow up. Never invent prices, sizes, part numbers or policies.
- If the passages say the shop does not advise on something or that a professional must handle it, say exactly that.
- If the customer may be in danger (leaks, fire, smoke, brakes), start the reply with the safety steps from the passages.
- Be polite and brief. Write only the reply text, without a subject line.";

/// The OpenAI-compatible backend.
#[derive(Debug, Clone)]
pub struct LlmDrafter {
    client: reqwest::Client,
    endpoint: String,
    config: LlmConfig,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage>,
    temperature: f32,
}

#[derive(Serialize)]
struct ChatMessage {
    role: &'static str,
    content: String,
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: AssistantMessage,
}

#[derive(Deserialize)]
struct AssistantMessage {
    #[serde(default)]
    content: Option<String>,
}

impl LlmDrafter {
    /// A drafter for `config` (builds the HTTP client; no request is made).
    pub fn new(config: LlmConfig) -> Result<Self, DraftError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| DraftError::Rejected(format!("cannot build HTTP client: {e}")))?;
        let endpoint = format!("{}/chat/completions", config.url.trim_end_matches('/'));
        Ok(Self {
            client,
            endpoint,
            config,
        })
    }

    /// The prompt's user message: numbered passages, recent conversation, the question.
    pub fn user_prompt(request: &DraftRequest, safety: &[String]) -> String {
        let mut prompt = String::from("Knowledge passages:\n");
        if request.passages.is_empty() {
            prompt.push_str("(none available)\n");
        }
        for (n, passage) in request.passages.iter().enumerate() {
            prompt.push_str(&format!(
                "[{}] {} ({}, relevance {:.2})\n{}\n\n",
                n + 1,
                passage.title,
                passage.source,
                passage.relevance,
                passage.text.trim()
            ));
        }
        if !request.context.is_empty() {
            prompt.push_str("Recent conversation (oldest first):\n");
            for message in &request.context {
                let who = if message.from_customer {
                    "Customer"
                } else {
                    "Agent"
                };
                prompt.push_str(&format!("{who}: {}\n", message.text.trim()));
            }
            prompt.push('\n');
        }
        if !safety.is_empty() {
            prompt.push_str(&format!(
                "Note: possible safety issue (the customer wrote: {}).\n\n",
                safety.join(", ")
            ));
        }
        prompt.push_str(&format!("Customer message:\n{}\n", request.message.trim()));
        prompt
    }

    /// Asks the model for the reply and notes which passages it cited.
    pub(crate) async fn compose(
        &self,
        request: &DraftRequest,
        safety: &[String],
    ) -> Result<Composition, DraftError> {
        let body = ChatRequest {
            model: &self.config.model,
            messages: vec![
                ChatMessage {
                    role: "system",
                    content: SYSTEM_PROMPT.to_owned(),
                },
                ChatMessage {
                    role: "user",
                    content: Self::user_prompt(request, safety),
                },
            ],
            temperature: TEMPERATURE,
        };
        let mut call = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = &self.config.api_key {
            call = call.bearer_auth(key.expose_secret());
        }
        let response = call.send().await.map_err(classify_transport)?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let excerpt: String = text.chars().take(MAX_ERROR_BODY_CHARS).collect();
            let message = format!("{} answered {status}: {excerpt}", self.endpoint);
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                DraftError::Unavailable(message)
            } else {
                DraftError::Rejected(message)
            });
        }
        let bytes = response.bytes().await.map_err(classify_transport)?;
        let parsed: ChatResponse = serde_json::from_slice(&bytes).map_err(|e| {
            DraftError::Rejected(format!(
                "{} answered an unexpected body: {e}",
                self.endpoint
            ))
        })?;
        let content = parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                DraftError::Rejected(format!("{} answered no completion text", self.endpoint))
            })?;

        let mut used = cited_passages(&content, request.passages.len());
        if used.is_empty() {
            used = (0..request.passages.len()).collect();
        }
        let answer = content.clone();
        let text = if !safety.is_empty() && !opens_with_safety(&content) {
            let block = safety_block(&request.passages, safety);
            if let Some(index) = block.passage {
                if !used.contains(&index) {
                    used.insert(0, index);
                }
            }
            format!("{}\n\n{content}", block.render())
        } else {
            content
        };
        Ok(Composition { text, used, answer })
    }
}

/// True when the model already put safety first (its first line mentions safety).
fn opens_with_safety(content: &str) -> bool {
    let first_line = content.lines().next().unwrap_or_default().to_lowercase();
    first_line.contains("safety")
}

/// Indexes (0-based) of the passages cited as `[n]`, in first-citation order.
fn cited_passages(content: &str, count: usize) -> Vec<usize> {
    let mut cited = Vec::new();
    let mut rest = content;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else {
            break;
        };
        for part in rest[..close].split(',') {
            if let Ok(n) = part.trim().parse::<usize>() {
                if (1..=count).contains(&n) && !cited.contains(&(n - 1)) {
                    cited.push(n - 1);
                }
            }
        }
        rest = &rest[close..];
    }
    cited
}

fn classify_transport(error: reqwest::Error) -> DraftError {
    if error.is_decode() || error.is_builder() {
        DraftError::Rejected(error.to_string())
    } else {
        DraftError::Unavailable(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_are_parsed_and_bounded() {
        assert_eq!(
            cited_passages("AN-6 is 3/8 inch [2]. See also [1, 2] and [9].", 3),
            vec![1, 0]
        );
        assert!(cited_passages("no citations [x]", 3).is_empty());
    }
}
