//! The HTTP side of the fake: a hyper 1 server on `127.0.0.1:0` that routes, injects faults,
//! checks the token and the account, runs the [`super::store::Store`], and records every
//! request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::faults::{Fault, Faults};
use super::profiles;
use super::routes::{match_route, Endpoint};
use super::store::{Answer, Store};

/// The header Chatwoot reads the token from.
const TOKEN_HEADER: &str = "api_access_token";

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The route it matched, if any.
    pub endpoint: Option<Endpoint>,
    /// The `api_access_token` header.
    pub api_access_token: Option<String>,
    /// The account in the path (`/api/v1/accounts/{id}/…`); `None` for `/api/v1/profile`.
    pub account_id: Option<i64>,
    /// The `content-type` header.
    pub content_type: Option<String>,
    /// The body, when it was JSON.
    pub body: Option<Value>,
    /// The status answered; `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
}

/// State shared by the handle and the connections.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) store: Mutex<Store>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    /// [`Fault::ApplyAfter`] writes taken but not applied yet.
    pub(crate) late_writes: AtomicUsize,
    /// Further accounts served on the same address ([`super::FakeChatwoot::add_account`]),
    /// each with its own token, store, faults and request log.
    pub(crate) others: Mutex<Vec<Arc<Shared>>>,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn requests(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Who serves a request: the account in its path (this one when no other account has
    /// that id, so an unknown account is still 404 here) or, for `/api/v1/profile`, the
    /// account whose token it carries. Like Chatwoot, a token of one account used on another
    /// account's path is then refused 401 by that account.
    fn target(self: &Arc<Self>, path_account: Option<i64>, token: Option<&str>) -> Arc<Self> {
        let others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        let found = others.iter().find(|other| match path_account {
            Some(id) => other.store().account_id == id,
            None => token.is_some_and(|t| {
                t == other.token || profiles::agent_of_token(&other.store(), t).is_some()
            }),
        });
        found.cloned().unwrap_or_else(|| Arc::clone(self))
    }
}

/// The service's error: hyper closes the connection without writing a response.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault injected: connection dropped after applying the request")
    }
}

impl std::error::Error for DropConnection {}

/// What to send back.
enum Outcome {
    Answer(Answer),
    /// Rack::Attack's throttle answer: plain text, no `Retry-After`.
    RateLimited,
    Drop,
}

/// Accepts connections until `shutdown` is cancelled.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = shutdown.cancelled() => {}
                _ = connection => {}
            }
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path_account = match_route(&parts.method, parts.uri.path()).and_then(|r| r.account_id);
    let shared = shared.target(path_account, header(TOKEN_HEADER).as_deref());
    let mut record = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        endpoint: None,
        api_access_token: header(TOKEN_HEADER),
        account_id: path_account,
        content_type: header("content-type"),
        body: serde_json::from_slice(&bytes).ok(),
        status: None,
    };
    let outcome = process(&shared, &parts.method, &mut record, &bytes).await;
    let response = match outcome {
        Outcome::Answer(answer) => {
            record.status = Some(answer.status);
            Ok(json_response(answer))
        }
        Outcome::RateLimited => {
            record.status = Some(429);
            Ok(text_response(429, "Retry later\n"))
        }
        Outcome::Drop => Err(DropConnection),
    };
    shared.requests().push(record);
    response
}

async fn process(
    shared: &Arc<Shared>,
    method: &http::Method,
    record: &mut RecordedRequest,
    bytes: &[u8],
) -> Outcome {
    let Some(route) = match_route(method, &record.path) else {
        return Outcome::Answer(Answer::json(
            404,
            json!({"status": 404, "error": "Not Found"}),
        ));
    };
    record.endpoint = Some(route.endpoint);
    let latency = shared.faults().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = shared.faults().pick(route.endpoint);
    match fault {
        Some(Fault::Status(429)) => return Outcome::RateLimited,
        Some(Fault::Status(500)) => return Outcome::Answer(Answer::internal_error()),
        Some(Fault::Status(status)) => {
            return Outcome::Answer(Answer::json(
                status,
                json!({"status": status, "error": "fault injected"}),
            ))
        }
        _ => {}
    }
    let user_id = match &record.api_access_token {
        None => {
            return Outcome::Answer(Answer::json(
                401,
                json!({"errors": ["You need to sign in or sign up before continuing."]}),
            ))
        }
        Some(token) if *token == shared.token => shared.store().token_user_id,
        Some(token) => match profiles::agent_of_token(&shared.store(), token) {
            Some(id) => id,
            None => {
                return Outcome::Answer(Answer::json(401, json!({"error": "Invalid Access Token"})))
            }
        },
    };
    let account_id = shared.store().account_id;
    if route.account_id != Some(account_id) && route.endpoint != Endpoint::Profile {
        return Outcome::Answer(Answer::not_found());
    }
    let Ok(params) = params(record, bytes) else {
        return Outcome::Answer(Answer::json(
            400,
            json!({"status": 400, "error": "Bad Request"}),
        ));
    };
    match route.endpoint {
        Endpoint::Profile => return Outcome::Answer(profiles::profile(&shared.store(), user_id)),
        Endpoint::ListDashboardApps => {
            return Outcome::Answer(profiles::list_dashboard_apps(&shared.store()))
        }
        Endpoint::CreateDashboardApp => {
            return Outcome::Answer(profiles::create_dashboard_app(
                &mut shared.store(),
                user_id,
                &params,
            ))
        }
        _ => {}
    }
    if let Some(Fault::ApplyAfter(delay)) = fault {
        // Detached, so the request is applied even when the client gave up and hyper dropped
        // this handler.
        let shared = Arc::clone(shared);
        shared.late_writes.fetch_add(1, Ordering::SeqCst);
        let late = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let answer = shared.store().handle(route, &params);
            shared.late_writes.fetch_sub(1, Ordering::SeqCst);
            answer
        });
        return match late.await {
            Ok(answer) => Outcome::Answer(answer),
            Err(_) => Outcome::Drop,
        };
    }
    let answer = shared.store().handle(route, &params);
    match fault {
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            Outcome::Answer(answer)
        }
        Some(Fault::DropAfterApply) => Outcome::Drop,
        _ => Outcome::Answer(answer),
    }
}

/// Rails' `params`: the query merged with a JSON body (the body wins). A JSON content type
/// with a malformed body is a 400; other content types are not parsed here.
fn params(record: &RecordedRequest, bytes: &[u8]) -> Result<Map<String, Value>, ()> {
    let mut params = Map::new();
    if let Some(query) = &record.query {
        let url = reqwest::Url::parse(&format!("http://fake/?{query}")).map_err(|_| ())?;
        for (k, v) in url.query_pairs() {
            params.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    let is_json = record
        .content_type
        .as_deref()
        .is_some_and(|t| t.contains("json"));
    if is_json && !bytes.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(bytes).map_err(|_| ())? {
            Value::Object(body) => params.extend(body),
            other => {
                params.insert("_json".into(), other);
            }
        }
    }
    Ok(params)
}

fn json_response(answer: Answer) -> Response<Full<Bytes>> {
    let builder = Response::builder().status(answer.status);
    let response = match answer.body {
        Some(body) => builder
            .header("content-type", "application/json; charset=utf-8")
            .body(Full::new(Bytes::from(body.to_string()))),
        None => builder.body(Full::new(Bytes::new())),
    };
    response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn text_response(status: u16, text: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
