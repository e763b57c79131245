//! What the drafter produces: the draft and its classification.

use serde::{Deserialize, Serialize};

pub use super::sentiment::Sentiment;

/// What the operator is advised to do with the draft, and how soon to handle it: the
/// approval store's own types, so a draft is stored as it was classified.
pub use copydesk::domain::{Action, Priority};

/// Why a draft is weaker than usual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Degradation {
    /// The knowledge lookup failed; the draft was made without knowledge.
    KnowledgeUnavailable,
    /// No knowledge passage was available for the question.
    NoKnowledge,
    /// The drafter (LLM) failed; this is the placeholder.
    DrafterUnavailable,
    /// The model stopped at its token limit (`finish_reason: "length"`): the reply is cut
    /// off and is never recommended for sending.
    Truncated,
}

/// Which backend wrote the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrafterKind {
    /// Sentences picked from the passages (offline, the default).
    Extractive,
    /// An OpenAI-compatible chat model.
    Llm,
    /// Nothing could be drafted: the operator writes the reply.
    Placeholder,
}

/// A knowledge passage the draft relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Where it came from (`faq.md#what-does-an-6-mean`).
    pub source: String,
    /// Its title.
    pub title: String,
    /// Its retrieval relevance in `0..=1`.
    pub relevance: f32,
}

/// A reply draft for an operator, with the drafter's advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The proposed reply.
    pub text: String,
    /// 0–100: how well knowledge backs the reply (see `confidence` module).
    pub confidence: u8,
    /// Passages the reply relies on, best first.
    pub sources: Vec<Source>,
    /// Advised handling.
    pub action: Action,
    /// How soon to handle it.
    pub priority: Priority,
    /// How the customer sounds.
    pub sentiment: Sentiment,
    /// True when the customer's words suggest a safety issue.
    pub safety: bool,
    /// The safety words found (empty when `safety` is false).
    pub safety_matches: Vec<String>,
    /// True when the contact or conversation is flagged VIP.
    pub vip: bool,
    /// True when the knowledge says the question is out of the shop's scope (it refers the
    /// customer to a professional or declines to advise).
    pub out_of_scope: bool,
    /// Why the draft looks like it was steered (it asks for card details or a password,
    /// promises a refund, or links somewhere, and the knowledge does not): never `send`.
    #[serde(default)]
    pub suspicious: Vec<String>,
    /// Why the draft is weaker than usual, if it is.
    pub degraded: Vec<Degradation>,
    /// Which backend wrote it.
    pub backend: DrafterKind,
}
