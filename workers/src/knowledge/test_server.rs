//! A tiny local HTTP server for tests of the HTTP backends: answers a scripted list of
//! responses (the last one repeats) and records each request's JSON body and headers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// One scripted answer.
#[derive(Debug, Clone)]
pub(crate) struct FakeResponse {
    status: u16,
    body: String,
    content_type: &'static str,
    delay: Option<Duration>,
}

impl FakeResponse {
    /// A JSON answer.
    pub(crate) fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            content_type: "application/json",
            delay: None,
        }
    }

    /// A plain text answer.
    pub(crate) fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            content_type: "text/plain",
            delay: None,
        }
    }

    /// Answers only after `delay` (to exercise client timeouts).
    pub(crate) fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

/// A recorded request.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) body: serde_json::Value,
}

#[derive(Default)]
struct State {
    script: Vec<FakeResponse>,
    served: usize,
    recorded: Vec<Recorded>,
}

/// The running server; stops when dropped.
pub(crate) struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts a server on a free port answering `script` in order.
    pub(crate) async fn start(script: Vec<FakeResponse>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("bound address");
        let state = Arc::new(Mutex::new(State {
            script,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(Arc::clone(&state), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// A URL on a port where nothing listens (connection refused).
    pub(crate) async fn closed_url() -> String {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let addr = listener.local_addr().expect("bound address");
        drop(listener);
        format!("http://{addr}/")
    }

    /// `http://127.0.0.1:port{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// JSON bodies received so far.
    pub(crate) async fn requests(&self) -> Vec<serde_json::Value> {
        self.recorded().await.into_iter().map(|r| r.body).collect()
    }

    /// Everything received so far.
    pub(crate) async fn recorded(&self) -> Vec<Recorded> {
        self.state.lock().await.recorded.clone()
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = request.into_body().collect().await?.to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    let reply = {
        let mut state = state.lock().await;
        state.recorded.push(Recorded {
            path,
            authorization,
            body,
        });
        let index = state.served.min(state.script.len().saturating_sub(1));
        state.served += 1;
        state
            .script
            .get(index)
            .cloned()
            .unwrap_or_else(|| FakeResponse::text(500, "no scripted response"))
    };
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let response = Response::builder()
        .status(reply.status)
        .header(hyper::header::CONTENT_TYPE, reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a scripted response is a valid response");
    Ok(response)
}
