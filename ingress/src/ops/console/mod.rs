//! The operator console: server-rendered pages under `/ui/` on the ops listener, for people
//! instead of `curl`. Every decision goes through [`copydesk::operator::Operator`], exactly as
//! the JSON API's do; the signed-in Chatwoot agent is recorded as the operator.
//!
//! - [`config`]: [`ConsoleConfig`] (Chatwoot URL and account, session TTL, cookies, framing).
//! - [`session`]: sessions in Redis, the cookie, the sign-in rate limit.
//! - [`signin`]: sign-in with a Chatwoot access token (checked with `GET /api/v1/profile`)
//!   or the ops token.
//! - [`http`]: response building, security headers (CSP), same-origin check, forms.
//! - [`pages`]: the layout and the small pages; [`queue`]: the queue; [`draft`]: the draft
//!   page and the decisions; [`admin`]: dead letters, queues and the spool; [`stats`]: the
//!   stats page (rates, medians, FRT/TTR, SLA breaches as SVG charts).
//! - `/ui/events` is the ops event stream behind the session cookie; the page's script turns
//!   each event into one row fetched from `/ui/fragments/row/{id}` (deltas, not the list).

pub mod admin;
pub mod diff;
pub mod draft;
pub mod evidence;
pub mod http;
pub mod pages;
pub mod queue;
pub mod reconcile;
pub mod search;
pub mod session;
pub mod signin;
pub mod stats;

use ::http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

/// The console's config section (it lives with the other config sections).
pub use crate::config::console as config;
pub use crate::config::console::ConsoleConfig;

use self::http::{redirect, security_headers, text};
use crate::ops::{OpsBody, OpsState};
use session::{SessionUser, Sessions};

/// The console's state, part of the ops state.
#[derive(Debug)]
pub struct Console {
    pub(crate) config: ConsoleConfig,
    pub(crate) sessions: Sessions,
    pub(crate) http: reqwest::Client,
    /// The queue's filter index (see [`search`]).
    pub(crate) index: search::QueueIndex,
}

impl Console {
    /// A console on `queue`'s Redis.
    pub fn new(config: ConsoleConfig, queue: &copydesk::queue::QueueClient) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            sessions: Sessions::new(queue.clone(), config.session_ttl),
            config,
            http,
            index: search::QueueIndex::default(),
        }
    }
}

/// What a console handler sees.
pub(crate) struct Ctx<'a> {
    pub(crate) ops: &'a OpsState,
    pub(crate) console: &'a Console,
    pub(crate) user: SessionUser,
}

/// Serves one `/ui` request.
pub(crate) async fn handle(
    ops: &OpsState,
    console: &Console,
    request: Request<Incoming>,
) -> Response<OpsBody> {
    let mut response = route(ops, console, request).await;
    security_headers(&console.config, &mut response);
    response
}

async fn route(ops: &OpsState, console: &Console, request: Request<Incoming>) -> Response<OpsBody> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["assets", name]) => return pages::asset(name),
        (&Method::GET, ["signin"]) => return signin::form(console, &request),
        (&Method::POST, _) | (&Method::DELETE, _) if !http::same_origin(request.headers()) => {
            return pages::refusal(
                StatusCode::FORBIDDEN,
                "This request did not come from a Copydesk page, so it was refused.",
            );
        }
        (&Method::POST, ["signin"]) => return signin::submit(ops, console, request).await,
        _ => {}
    }
    let session = session::session_id(request.headers());
    let user = match &session {
        Some(id) => match console.sessions.touch(id).await {
            Ok(user) => user,
            Err(error) => {
                tracing::warn!(%error, "console: session lookup failed");
                return pages::refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Copydesk cannot reach its Redis right now; try again in a moment.",
                );
            }
        },
        None => None,
    };
    let Some(user) = user else {
        if method == Method::GET && segments.first() == Some(&"events") {
            return text(StatusCode::UNAUTHORIZED, "sign in first");
        }
        let next = match (&method, segments.as_slice()) {
            (&Method::GET, _) => request
                .uri()
                .path_and_query()
                .map_or("/ui/".to_owned(), |p| p.as_str().to_owned()),
            (_, ["approvals", id, _]) => format!("/ui/approvals/{id}"),
            _ => "/ui/".to_owned(),
        };
        return redirect(&signin::signin_url(&next));
    };
    let ctx = Ctx { ops, console, user };
    match (&method, segments.as_slice()) {
        (&Method::GET, [] | [""]) => queue::page(&ctx, &request).await,
        (&Method::GET, ["approvals", id]) => draft::page(&ctx, id, None).await,
        (&Method::POST, ["approvals", id, action]) => {
            let (id, action) = ((*id).to_owned(), (*action).to_owned());
            draft::decide(&ctx, &id, &action, request).await
        }
        (&Method::GET, ["conversation"]) => draft::conversation(&ctx, &request).await,
        (&Method::GET, ["fragments", "row", id]) => queue::row_fragment(&ctx, id, &request).await,
        (&Method::GET, ["events"]) => {
            match crate::ops::events::open(ops, request.headers()).await {
                Ok(response) => response,
                Err(error) => text(error.status(), &error.to_string()),
            }
        }
        (&Method::POST, ["signout"]) => {
            signin::signout(console, session.as_deref(), &request).await
        }
        (&Method::GET, ["dead-letters"]) => admin::dead_letters(&ctx, &request).await,
        (&Method::GET, ["dead-letters", id]) => admin::dead_letter(&ctx, id).await,
        (&Method::POST, ["dead-letters", rest @ ..]) => {
            admin::dead_letter_action(&ctx, rest, &request).await
        }
        (&Method::GET, ["queues"]) => admin::queues(&ctx).await,
        (&Method::GET, ["stats"]) => stats::page(&ctx).await,
        _ => pages::not_found(&ctx.user, "There is no such page in the console."),
    }
}
