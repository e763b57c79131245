//! A remote LlamaIndex retriever over HTTP: plain FastAPI apps, llama-index-networks and
//! LlamaCloud pipelines.

use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::llamaindex::{passages_from_body, ScoreKind};
use super::{KnowledgeError, KnowledgeQuery, Passage, Retriever};

/// Longest error body quoted in an error message.
const MAX_ERROR_BODY_CHARS: usize = 200;

/// Largest retriever answer read (LlamaIndex nodes carry relationships and metadata: 50
/// nodes are well under 1 MiB); a larger body is refused, never buffered whole.
pub const MAX_RETRIEVER_BODY_BYTES: usize = 8 * 1024 * 1024;

/// A LlamaIndex retriever behind HTTP (`COPYDESK_KNOWLEDGE_URL`).
///
/// # Requests
///
/// Any URL: `POST {url}` with `Content-Type: application/json`:
///
/// ```json
/// {"query": "What does AN-6 mean?", "top_k": 4, "context": ["earlier message", "…"]}
/// ```
///
/// `query` is the customer message; `context` holds up to 5 recent messages of the
/// conversation, oldest first (servers may ignore it).
///
/// A LlamaCloud pipeline URL (`…/api/v1/pipelines/{id}/retrieve`) gets LlamaCloud's own
/// fields instead: `{"query", "dense_similarity_top_k", "sparse_similarity_top_k",
/// "rerank_top_n"}` (each = top_k). With an API key (`COPYDESK_KNOWLEDGE_API_KEY`) every
/// request carries `Authorization: Bearer <key>`.
///
/// # Answers
///
/// The shapes real LlamaIndex servers send (see [`super::llamaindex`]): `nodes`,
/// `nodes_dict`, `retrieval_nodes` or a bare list of `NodeWithScore`, with `metadata` or
/// `extra_info`, `TextNode` or `Node`. Scores are normalised by [`ScoreKind`]; passages are
/// re-sorted by relevance and cut to `top_k`.
///
/// Errors: timeouts, connection failures, `429` and `5xx` are retryable
/// ([`KnowledgeError::Unavailable`]); other `4xx`, bodies over
/// [`MAX_RETRIEVER_BODY_BYTES`] and bodies of no known shape are permanent
/// ([`KnowledgeError::Rejected`]).
#[derive(Debug, Clone)]
pub struct HttpRetriever {
    client: reqwest::Client,
    url: String,
    api_key: Option<SecretString>,
    score: ScoreKind,
    llamacloud: bool,
}

#[derive(Debug, Serialize)]
struct RetrieveRequest<'a> {
    query: &'a str,
    top_k: usize,
    context: &'a [String],
}

/// LlamaCloud's `POST /api/v1/pipelines/{id}/retrieve` body (fields of the `llama-cloud`
/// SDK's `pipelines.retrieve`).
#[derive(Debug, Serialize)]
struct LlamaCloudRequest<'a> {
    query: &'a str,
    dense_similarity_top_k: usize,
    sparse_similarity_top_k: usize,
    rerank_top_n: usize,
}

/// True for a LlamaCloud pipeline retrieve URL.
fn is_llamacloud_pipeline(url: &str) -> bool {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    matches!(
        parts.as_slice(),
        [.., "api", "v1", "pipelines", id, "retrieve"] if !id.is_empty()
    )
}

impl HttpRetriever {
    /// A retriever for `url`, each call bounded by `timeout` (connect + response), scores
    /// read as [`ScoreKind::Auto`] and no API key.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self, KnowledgeError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| KnowledgeError::Rejected(format!("cannot build HTTP client: {e}")))?;
        let url = url.into();
        Ok(Self {
            client,
            llamacloud: is_llamacloud_pipeline(&url),
            url,
            api_key: None,
            score: ScoreKind::Auto,
        })
    }

    /// Sends `key` as `Authorization: Bearer` with every request.
    pub fn with_api_key(mut self, key: Option<SecretString>) -> Self {
        self.api_key = key;
        self
    }

    /// Reads scores as `kind`.
    pub fn with_score_kind(mut self, kind: ScoreKind) -> Self {
        self.score = kind;
        self
    }

    /// The endpoint this retriever posts to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when the URL is a LlamaCloud pipeline (LlamaCloud's request fields are sent).
    pub fn is_llamacloud(&self) -> bool {
        self.llamacloud
    }

    /// The best passages for `query` from the remote retriever.
    #[tracing::instrument(name = "retriever", skip_all, fields(
        otel.name = "POST retriever", otel.kind = "client", llamacloud = self.llamacloud))]
    pub async fn retrieve_passages(
        &self,
        query: &KnowledgeQuery,
    ) -> Result<Vec<Passage>, KnowledgeError> {
        let mut call = self.client.post(&self.url);
        call = if self.llamacloud {
            call.json(&LlamaCloudRequest {
                query: &query.message,
                dense_similarity_top_k: query.top_k,
                sparse_similarity_top_k: query.top_k,
                rerank_top_n: query.top_k,
            })
        } else {
            call.json(&RetrieveRequest {
                query: &query.message,
                top_k: query.top_k,
                context: query.recent_context(),
            })
        };
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key.expose_secret());
        }
        let response = call.send().await.map_err(classify_transport)?;
        let status = response.status();
        if !status.is_success() {
            let body = read_capped(response, MAX_ERROR_READ_BYTES)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let excerpt: String = body.chars().take(MAX_ERROR_BODY_CHARS).collect();
            let message = format!("{} answered {status}: {excerpt}", self.url);
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                KnowledgeError::Unavailable(message)
            } else {
                KnowledgeError::Rejected(message)
            });
        }
        let bytes = read_capped(response, MAX_RETRIEVER_BODY_BYTES)
            .await
            .map_err(|e| match e {
                CappedReadError::TooLarge(limit) => KnowledgeError::Rejected(format!(
                    "{} answered more than {limit} bytes",
                    self.url
                )),
                CappedReadError::Transport(e) => classify_transport(e),
            })?;
        let mut passages = passages_from_body(&bytes, self.score).map_err(|e| {
            KnowledgeError::Rejected(format!(
                "{} answered JSON of no known retriever shape: {}",
                self.url, e.0
            ))
        })?;
        passages.sort_by(|a, b| b.relevance.total_cmp(&a.relevance));
        passages.truncate(query.top_k);
        Ok(passages)
    }
}

/// Bytes of an error body read to quote from it.
const MAX_ERROR_READ_BYTES: usize = 16 * 1024;

/// Why [`read_capped`] stopped.
#[derive(Debug)]
pub(crate) enum CappedReadError {
    /// The body is longer than the limit (given).
    TooLarge(usize),
    /// The connection failed mid-body.
    Transport(reqwest::Error),
}

/// Reads `response`'s body through the shared bounded reader
/// ([`copydesk::http_body::read_capped`]), refusing past `limit` bytes.
pub(crate) async fn read_capped(
    response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, CappedReadError> {
    match copydesk::http_body::read_capped(response, limit).await {
        Ok(body) => Ok(body.to_vec()),
        Err(copydesk::http_body::BodyError::TooLarge { limit, .. }) => {
            Err(CappedReadError::TooLarge(limit))
        }
        Err(copydesk::http_body::BodyError::Read(error)) => Err(CappedReadError::Transport(error)),
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
            .with_score_kind(ScoreKind::Cosine)
            .retrieve(&query)
            .await
            .expect("lookup works");

        assert_eq!(passages.len(), 3);
        assert_eq!(passages[0].relevance, 1.0);
        assert_eq!(passages[1].title, "What does AN-6 mean?");
        assert_eq!(passages[1].source, "faq.md#an-6");
        assert!((passages[1].relevance - 0.83).abs() < 1e-6);
        assert_eq!(passages[2].title, "X");
        assert_eq!(passages[2].source, "x.md");
        assert_eq!(passages[2].relevance, 0.5);
        let request = server.requests().await.pop().expect("one request");
        assert_eq!(request["query"], "What does AN-6 mean?");
        assert_eq!(request["top_k"], 3);
        assert_eq!(request["context"][0], "hi");
    }

    #[tokio::test]
    async fn a_llamacloud_pipeline_gets_its_own_fields_and_the_bearer_key() {
        let body: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../tests/fixtures/llamaindex/llamacloud_retrieval_nodes.json"),
            )
            .expect("fixture"),
        )
        .expect("fixture is JSON");
        let server = TestServer::start(vec![FakeResponse::json(200, body)]).await;
        let url = server.url("/api/v1/pipelines/0b6c4c4e-1f0e-4a55-9d55-3d3f6a1c2b7e/retrieve");
        let client = HttpRetriever::new(url, Duration::from_secs(5))
            .expect("client builds")
            .with_api_key(Some(SecretString::from("llx-secret")));
        assert!(client.is_llamacloud());

        let passages = client
            .retrieve(&KnowledgeQuery::new("What does AN-6 mean?").with_top_k(2))
            .await
            .expect("LlamaCloud answer is read");

        assert_eq!(passages.len(), 2);
        assert_eq!(passages[0].source, "faq.md#what-does-an-6-mean");
        let recorded = server.recorded().await.pop().expect("one request");
        assert_eq!(recorded.authorization.as_deref(), Some("Bearer llx-secret"));
        assert_eq!(recorded.body["query"], "What does AN-6 mean?");
        assert_eq!(recorded.body["dense_similarity_top_k"], 2);
        assert_eq!(recorded.body["sparse_similarity_top_k"], 2);
        assert!(recorded.body.get("top_k").is_none(), "{}", recorded.body);
        assert!(!format!("{client:?}").contains("llx-secret"));
    }

    #[test]
    fn only_pipeline_retrieve_urls_are_llamacloud() {
        for (url, expected) in [
            (
                "https://api.cloud.llamaindex.ai/api/v1/pipelines/abc/retrieve",
                true,
            ),
            (
                "https://api.cloud.eu.llamaindex.ai/api/v1/pipelines/abc/retrieve/",
                true,
            ),
            ("http://rag:8000/retrieve", false),
            ("http://rag:8000/api/retrieve", false),
            ("https://x/api/v1/pipelines//retrieve", false),
        ] {
            assert_eq!(is_llamacloud_pipeline(url), expected, "{url}");
        }
    }

    #[tokio::test]
    async fn a_plain_server_gets_the_key_too_and_an_oversized_answer_is_refused() {
        let huge = "x".repeat(MAX_RETRIEVER_BODY_BYTES + 1);
        let server = TestServer::start(vec![FakeResponse::text(200, &huge)]).await;
        let client = retriever(&server).with_api_key(Some(SecretString::from("k1")));
        let err = client
            .retrieve(&KnowledgeQuery::new("q"))
            .await
            .expect_err("too large");
        assert!(matches!(err, KnowledgeError::Rejected(_)), "{err}");
        assert!(err.to_string().contains("more than"), "{err}");
        let recorded = server.recorded().await.pop().expect("one request");
        assert_eq!(recorded.authorization.as_deref(), Some("Bearer k1"));
        assert_eq!(recorded.body["top_k"], 4);
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
