//! The operator ops API: `/api/...` on its own listener (`COPYDESK_OPS_LISTEN`), every request
//! authenticated with `Authorization: Bearer <COPYDESK_OPS_TOKEN>`. Without
//! `COPYDESK_OPS_LISTEN` there is no ops listener at all.
//!
//! - [`auth`]: the constant-time bearer check.
//! - [`approvals`]: list, read and decide approval items.
//! - [`dead_letters`]: list, read, redrive and delete dead letters.
//! - [`queues`]: queue depths.
//! - [`events`]: `GET /api/events`, server-sent events.
//! - [`request`]: query, path and body parsing; [`error`]: [`OpsError`] → status + JSON.
//!
//! Routing: `handle` matches the first path segment (one arm per prefix; `api` and, for
//! now, everything else go through the bearer check), then the API's one
//! `match (method, path segments)` in `route`. Every answer is JSON except the event
//! stream. The listener runs on the ingress's one accept loop ([`crate::server`]): the same
//! connection caps and header limits as the webhook listener.

pub mod approvals;
pub mod auth;
pub mod console;
pub mod dead_letters;
pub mod error;
pub mod events;
pub mod queues;
pub mod request;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use copydesk::queue::{DeadLetters, QueueClient};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::server::graceful::GracefulShutdown;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use error::OpsError;

use crate::config::OpsConfig;
use crate::error::StartupError;
use crate::response::json;
use crate::server::{self, Listener};
use request::{JsonBody, Query};

/// The body of every ops response: a JSON document, or the event stream.
pub(crate) type OpsBody = UnsyncBoxBody<Bytes, Infallible>;

/// What the ops handlers share.
pub(crate) struct OpsState {
    pub(crate) queue: QueueClient,
    pub(crate) operator: copydesk::operator::Operator,
    pub(crate) dead_letters: DeadLetters,
    token: SecretString,
    /// The operator console (`/ui/`), if configured.
    pub(crate) console: Option<console::Console>,
    /// The ingress's spool, if configured (the console's queues page shows its state).
    pub(crate) spool: Option<crate::spool::Spool>,
    /// Opens the event streams' own connections (`XREAD BLOCK` must not share one).
    pub(crate) redis: redis::Client,
    /// Open event streams, at most [`events::MAX_STREAMS`].
    pub(crate) streams: Arc<Semaphore>,
    /// Cancelled on shutdown: event streams end so connections can drain.
    pub(crate) draining: CancellationToken,
}

impl OpsState {
    /// Whether `presented` is the ops token (constant time; the console's admin sign-in).
    pub(crate) fn is_ops_token(&self, presented: &SecretString) -> bool {
        let mut headers = http::HeaderMap::new();
        match http::HeaderValue::from_str(&format!("Bearer {}", presented.expose_secret())) {
            Ok(value) => {
                headers.insert(http::header::AUTHORIZATION, value);
                auth::check(&self.token, &headers).is_ok()
            }
            Err(_) => false,
        }
    }
}

/// The ops listener, bound, with its state.
pub struct OpsServer {
    listener: Listener,
    state: Arc<OpsState>,
}

impl std::fmt::Debug for OpsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsServer")
            .field("addr", &self.listener.addr())
            .finish_non_exhaustive()
    }
}

impl OpsServer {
    /// Binds `config.listen` (port 0 picks a free port) on the queue's Redis. Refuses a blank
    /// token: an ops API anyone can call must never start by accident.
    pub async fn build(
        config: OpsConfig,
        queue: &QueueClient,
        spool: Option<crate::spool::Spool>,
        draining: CancellationToken,
    ) -> Result<Self, StartupError> {
        if config.token.expose_secret().trim().is_empty() {
            return Err(StartupError::OpsTokenMissing);
        }
        let listener = Listener::bind("ops", config.listen).await?;
        let redis = queue.redis_client();
        let state = OpsState {
            queue: queue.clone(),
            operator: copydesk::operator::Operator::new(queue.clone()),
            dead_letters: DeadLetters::new(queue),
            token: config.token,
            console: config
                .console
                .map(|console| console::Console::new(console, queue)),
            spool,
            redis,
            streams: Arc::new(Semaphore::new(events::MAX_STREAMS)),
            draining,
        };
        Ok(Self {
            listener,
            state: Arc::new(state),
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr()
    }

    /// Accepts connections until `stop` is cancelled; each is watched by `graceful` so
    /// shutdown lets its current request finish (event streams end on `stop` themselves).
    pub async fn serve(self, graceful: &GracefulShutdown, stop: CancellationToken) {
        let state = self.state;
        let handler = move |request| {
            let state = Arc::clone(&state);
            async move { handle(&state, request).await }
        };
        server::serve(self.listener, handler, graceful, stop).await;
    }
}

/// The first segment of `path` (`"api"` for `/api/queues`).
fn first_segment(path: &str) -> &str {
    path.trim_start_matches('/').split('/').next().unwrap_or("")
}

/// The ops listener's top-level routing: one arm per path prefix. Paths without an arm of
/// their own go through the API's bearer check, so an unauthenticated client learns nothing
/// about which paths exist.
async fn handle(state: &OpsState, request: Request<Incoming>) -> Response<OpsBody> {
    match first_segment(request.uri().path()) {
        "ui" => match &state.console {
            Some(console) => console::handle(state, console, request).await,
            None => api(state, request).await,
        },
        _ => api(state, request).await,
    }
}

/// Serves one `/api` request: authenticate, route, answer; errors logged once, here.
async fn api(state: &OpsState, request: Request<Incoming>) -> Response<OpsBody> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let result = match auth::check(&state.token, request.headers()) {
        Ok(()) => route(state, request).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(response) => response,
        Err(error) => {
            let status = error.status();
            if status.is_server_error() {
                tracing::warn!(%method, %path, %status, error = %error, "ops request failed");
            } else {
                tracing::debug!(%method, %path, %status, error = %error, "ops request refused");
            }
            error.into_response().map(|body| body.boxed_unsync())
        }
    }
}

/// The one `match (method, path)` of the ops API.
async fn route(
    state: &OpsState,
    request: Request<Incoming>,
) -> Result<Response<OpsBody>, OpsError> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = Query::parse(request.uri().query());
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let answer = match (&method, segments.as_slice()) {
        (&Method::GET, ["api", "approvals"]) => approvals::list(state, &query).await,
        (_, ["api", "approvals"]) => Err(OpsError::MethodNotAllowed { allowed: "GET" }),
        (&Method::GET, ["api", "approvals", id]) => approvals::get(state, id).await,
        (_, ["api", "approvals", _]) => Err(OpsError::MethodNotAllowed { allowed: "GET" }),
        (&Method::POST, ["api", "approvals", id, action]) => {
            let (id, action) = ((*id).to_owned(), (*action).to_owned());
            let (parts, body) = request.into_parts();
            let bytes = request::read_body(body, &parts.headers).await?;
            let decision = approvals::parse_decision(&action, &JsonBody::parse(&bytes)?)?;
            approvals::decide(state, &id, decision).await
        }
        (_, ["api", "approvals", _, _]) => Err(OpsError::MethodNotAllowed { allowed: "POST" }),
        (&Method::GET, ["api", "queues"]) => queues::list(state).await,
        (_, ["api", "queues"]) => Err(OpsError::MethodNotAllowed { allowed: "GET" }),
        (&Method::GET, ["api", "dead-letters"]) => dead_letters::list(state, &query).await,
        (_, ["api", "dead-letters"]) => Err(OpsError::MethodNotAllowed { allowed: "GET" }),
        (&Method::POST, ["api", "dead-letters", "retry"]) => {
            dead_letters::retry_all(state, &query).await
        }
        (&Method::GET, ["api", "dead-letters", id]) => dead_letters::get(state, id).await,
        (&Method::DELETE, ["api", "dead-letters", id]) => dead_letters::purge(state, id).await,
        (_, ["api", "dead-letters", "retry"]) => Err(OpsError::MethodNotAllowed {
            allowed: "POST, GET, DELETE",
        }),
        (_, ["api", "dead-letters", _]) => Err(OpsError::MethodNotAllowed {
            allowed: "GET, DELETE",
        }),
        (&Method::POST, ["api", "dead-letters", id, "retry"]) => {
            dead_letters::retry(state, id).await
        }
        (_, ["api", "dead-letters", _, "retry"]) => {
            Err(OpsError::MethodNotAllowed { allowed: "POST" })
        }
        (&Method::GET, ["api", "events"]) => return events::open(state, request.headers()).await,
        (_, ["api", "events"]) => Err(OpsError::MethodNotAllowed { allowed: "GET" }),
        _ => Err(OpsError::NotFound(format!("path {path}"))),
    };
    answer.map(|value| json(StatusCode::OK, &value).map(|body| body.boxed_unsync()))
}
