//! A fake of the two upstream servers a production fleet may use, on one local port: a
//! LlamaIndex-style retriever (`POST /retrieve`, answering plain `NodeWithScore`s) and an
//! OpenAI-compatible model server (`GET /v1/models`, `POST /v1/chat/completions`). It
//! records every request so tests can count retrievals and model calls. A chat completion
//! whose prompt holds [`STALL_MARKER`] is recorded and never answered (until the fake stops):
//! a model server that hangs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The model name the fake serves.
pub const FAKE_MODEL: &str = "fake-model";

/// A chat completion whose request holds this text is held forever, unanswered.
pub const STALL_MARKER: &str = "stallmarker-never-answer";

/// One recorded request.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// `POST /retrieve` …
    pub method: String,
    /// The path.
    pub path: String,
    /// The JSON body (`Null` when there was none).
    pub body: Value,
}

/// The running fake; stops when dropped.
#[derive(Debug)]
pub struct FakeUpstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<UpstreamRequest>>>,
    stop: CancellationToken,
}

impl FakeUpstream {
    /// Starts on a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("bound");
        let requests: Arc<Mutex<Vec<UpstreamRequest>>> = Arc::default();
        let stop = CancellationToken::new();
        let (seen, until) = (requests.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    () = until.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let (seen, stop) = (seen.clone(), until.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(seen.clone(), stop.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            requests,
            stop,
        }
    }

    /// `COPYDESK_KNOWLEDGE_URL` for the retriever.
    pub fn retriever_url(&self) -> String {
        format!("http://{}/retrieve", self.addr)
    }

    /// `COPYDESK_LLM_URL` for the model server.
    pub fn llm_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The chat completions held unanswered so far ([`STALL_MARKER`]).
    pub fn stalled_completions(&self) -> usize {
        self.requests_to("POST", "/v1/chat/completions")
            .iter()
            .filter(|r| r.body.to_string().contains(STALL_MARKER))
            .count()
    }

    /// Every request so far to `method path`.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<UpstreamRequest> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn handle(
    seen: Arc<Mutex<Vec<UpstreamRequest>>>,
    stop: CancellationToken,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let bytes = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let stall = path == "/v1/chat/completions" && body.to_string().contains(STALL_MARKER);
    seen.lock().expect("lock").push(UpstreamRequest {
        method: method.clone(),
        path: path.clone(),
        body,
    });
    if stall {
        // A model server that hangs: no answer, the connection held open.
        stop.cancelled().await;
    }
    let answer = match (method.as_str(), path.as_str()) {
        ("POST", "/retrieve") => json!({"nodes": [{
            "node": {
                "id_": "faq-an6",
                "text": "AN sizes are measured in sixteenths of an inch: AN-6 = 6/16 = 3/8 inch.",
                "metadata": {"file_name": "faq.md", "header_path": "/What does AN-6 mean?/"}
            },
            "score": 0.92
        }]}),
        ("GET", "/v1/models") => {
            json!({"object": "list", "data": [{"id": FAKE_MODEL, "object": "model"}]})
        }
        ("POST", "/v1/chat/completions") => json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "model": FAKE_MODEL,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant",
                                     "content": "AN-6 means 6/16 inch, so the tube is 3/8 inch [1]."}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        }),
        _ => {
            return Ok(Response::builder()
                .status(404)
                .body(Full::new(Bytes::from_static(b"{\"detail\":\"Not Found\"}")))
                .unwrap_or_default())
        }
    };
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer.to_string())))
        .unwrap_or_default())
}
