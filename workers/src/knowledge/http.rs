//! A remote retriever speaking a LlamaIndex-style retrieve contract over HTTP.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{KnowledgeError, KnowledgeQuery, Passage, Retriever};

/// Longest error body quoted in an error message.
const MAX_ERROR_BODY_CHARS: usize = 200;

/// A LlamaIndex-style retriever behind HTTP (`COPYDESK_KNOWLEDGE_URL`).
///
/// # Contract
///
/// Request: `POST {url}` with `Content-Type: application/json`:
///
/// ```json
/// {"query": "What does AN-6 mean?", "top_k": 4, "context": ["earlier message", "…"]}
/// ```
///
/// `query` is the customer message; `context` holds up to 5 recent messages of the
/// conversation, oldest first (servers may ignore it).
///
/// Response `200` with a JSON body shaped like LlamaIndex's `NodeWithScore` list:
///
/// ```json
/// {"nodes": [
///   {"node": {"id_": "faq-12", "text": "AN sizes are …",
///             "metadata": {"title": "What does AN-6 mean?", "source": "faq.md#what-does-an-6-mean"}},
///    "score": 0.83}
/// ]}
/// ```
///
/// - `score` is a similarity in `0..=1` (values outside are clamped; a missing/null score
///   counts as 0.5, "unknown").
/// - the passage title is `metadata.title`, else `metadata.file_name`, else `id_`;
///   its source is `metadata.source`, else `metadata.file_path`, else `metadata.file_name`,
///   else `id_`.
/// - nodes are re-sorted by score and cut to `top_k`.
///
/// Errors: timeouts, connection failures, `429` and `5xx` are retryable
/// ([`KnowledgeError::Unavailable`]); other `4xx` and bodies that do not match the contract
/// are permanent ([`KnowledgeError::Rejected`]).
#[derive(Debug, Clone)]
pub struct HttpRetriever {
    client: reqwest::Client,
    url: String,
}

#[derive(Debug, Serialize)]
struct RetrieveRequest<'a> {
    query: &'a str,
    top_k: usize,
    context: &'a [String],
}

#[derive(Debug, Deserialize)]
struct RetrieveResponse {
    nodes: Vec<NodeWithScore>,
}

#[derive(Debug, Deserialize)]
struct NodeWithScore {
    node: Node,
    #[serde(default)]
    score: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct Node {
    #[serde(default)]
    id_: Option<String>,
    text: String,
    #[serde(default)]
    metadata: serde_json::Map<String, serde_json::Value>,
}

/// Relevance used when the retriever sends no score.
const UNKNOWN_SCORE: f32 = 0.5;

impl Node {
    fn metadata_str(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| {
            self.metadata
                .get(*k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        })
    }
}

impl HttpRetriever {
    /// A retriever for `url`, each call bounded by `timeout` (connect + response).
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self, KnowledgeError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| KnowledgeError::Rejected(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            client,
            url: url.into(),
        })
    }

    /// The endpoint this retriever posts to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The best passages for `query` from the remote retriever.
    pub async fn retrieve_passages(
        &self,
        query: &KnowledgeQuery,
    ) -> Result<Vec<Passage>, KnowledgeError> {
        let request = RetrieveRequest {
            query: &query.message,
            top_k: query.top_k,
            context: query.recent_context(),
        };
        let response = self
            .client
            .post(&self.url)
            .json(&request)
            .send()
            .await
            .map_err(classify_transport)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let excerpt: String = body.chars().take(MAX_ERROR_BODY_CHARS).collect();
            let message = format!("{} answered {status}: {excerpt}", self.url);
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                KnowledgeError::Unavailable(message)
            } else {
                KnowledgeError::Rejected(message)
            });
        }
        let bytes = response.bytes().await.map_err(classify_transport)?;
        let parsed: RetrieveResponse = serde_json::from_slice(&bytes).map_err(|e| {
            KnowledgeError::Rejected(format!(
                "{} answered JSON outside the contract: {e}",
                self.url
            ))
        })?;
        let mut passages: Vec<Passage> = parsed.nodes.into_iter().map(to_passage).collect();
        passages.sort_by(|a, b| b.relevance.total_cmp(&a.relevance));
        passages.truncate(query.top_k);
        Ok(passages)
    }
}

fn to_passage(scored: NodeWithScore) -> Passage {
    let node = scored.node;
    let id = node.id_.clone().unwrap_or_default();
    let relevance = scored
        .score
        .filter(|s| s.is_finite())
        .map_or(UNKNOWN_SCORE, |s| s.clamp(0.0, 1.0) as f32);
    Passage {
        title: node
            .metadata_str(&["title", "file_name"])
            .unwrap_or_else(|| id.clone()),
        source: node
            .metadata_str(&["source", "file_path", "file_name"])
            .unwrap_or(id),
        text: node.text,
        relevance,
    }
}

/// Transport failures (connect, timeout, reset mid-body) are all worth a retry.
fn classify_transport(error: reqwest::Error) -> KnowledgeError {
    if error.is_decode() || error.is_builder() {
        KnowledgeError::Rejected(error.to_string())
    } else {
        KnowledgeError::Unavailable(error.to_string())
    }
}

impl Retriever for HttpRetriever {
    fn retrieve<'a>(
        &'a self,
        query: &'a KnowledgeQuery,
    ) -> BoxFuture<'a, Result<Vec<Passage>, KnowledgeError>> {
        Box::pin(self.retrieve_passages(query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::test_server::{FakeResponse, TestServer};

    fn retriever(server: &TestServer) -> HttpRetriever {
        HttpRetriever::new(server.url("/retrieve"), Duration::from_secs(5)).expect("client builds")
    }

    #[tokio::test]
    async fn nodes_become_passages_sorted_and_cut_to_top_k() {
        let body = serde_json::json!({"nodes": [
            {"node": {"id_": "n1", "text": "low", "metadata": {}}, "score": 0.2},
            {"node": {"id_": "n2", "text": "AN-6 is 3/8 inch.",
                      "metadata": {"title": "What does AN-6 mean?", "source": "faq.md#an-6"}},
             "score": 0.83},
            {"node": {"id_": "n3", "text": "no score", "metadata": {"file_name": "x.md"}}},
            {"node": {"id_": "n4", "text": "too high", "metadata": {}}, "score": 7.5}
        ]});
        let server = TestServer::start(vec![FakeResponse::json(200, body)]).await;
        let query = KnowledgeQuery::new("What does AN-6 mean?")
            .with_context(vec!["hi".into()])
            .with_top_k(3);

        let passages = retriever(&server)
            .retrieve(&query)
            .await
            .expect("lookup works");

        assert_eq!(passages.len(), 3);
        assert_eq!(passages[0].relevance, 1.0);
        assert_eq!(passages[1].title, "What does AN-6 mean?");
        assert_eq!(passages[1].source, "faq.md#an-6");
        assert!((passages[1].relevance - 0.83).abs() < 1e-6);
        assert_eq!(passages[2].title, "x.md");
        assert_eq!(passages[2].relevance, 0.5);
        let request = server.requests().await.pop().expect("one request");
        assert_eq!(request["query"], "What does AN-6 mean?");
        assert_eq!(request["top_k"], 3);
        assert_eq!(request["context"][0], "hi");
    }

    #[tokio::test]
    async fn a_server_error_is_retryable() {
        let server = TestServer::start(vec![FakeResponse::text(500, "boom")]).await;
        let err = retriever(&server)
            .retrieve(&KnowledgeQuery::new("q"))
            .await
            .expect_err("500 fails");
        assert!(err.is_retryable(), "{err}");
    }

    #[tokio::test]
    async fn a_client_error_is_permanent() {
        let server = TestServer::start(vec![FakeResponse::text(422, "bad query")]).await;
        let err = retriever(&server)
            .retrieve(&KnowledgeQuery::new("q"))
            .await
            .expect_err("422 fails");
        assert!(!err.is_retryable(), "{err}");
        assert!(err.to_string().contains("bad query"), "{err}");
    }

    #[tokio::test]
    async fn json_outside_the_contract_is_permanent() {
        let server = TestServer::start(vec![
            FakeResponse::text(200, "not json"),
            FakeResponse::json(200, serde_json::json!({"results": []})),
        ])
        .await;
        let client = retriever(&server);
        for _ in 0..2 {
            let err = client
                .retrieve(&KnowledgeQuery::new("q"))
                .await
                .expect_err("bad body fails");
            assert!(matches!(err, KnowledgeError::Rejected(_)), "{err}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_retryable() {
        let url = TestServer::closed_url().await;
        let client = HttpRetriever::new(url, Duration::from_secs(2)).expect("client builds");
        let err = client
            .retrieve(&KnowledgeQuery::new("q"))
            .await
            .expect_err("nothing listens");
        assert!(err.is_retryable(), "{err}");
    }

    #[tokio::test]
    async fn a_timeout_is_retryable() {
        let server = TestServer::start(vec![FakeResponse::json(
            200,
            serde_json::json!({"nodes": []}),
        )
        .delayed(Duration::from_secs(5))])
        .await;
        let client =
            HttpRetriever::new(server.url("/"), Duration::from_millis(100)).expect("client builds");
        let err = client
            .retrieve(&KnowledgeQuery::new("q"))
            .await
            .expect_err("times out");
        assert!(err.is_retryable(), "{err}");
    }
}
