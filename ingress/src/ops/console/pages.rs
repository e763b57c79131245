//! The page layout, the sign-in page, refusals, and the embedded assets.

use http::{header, HeaderValue, Response, StatusCode};
use maud::{html, Markup, DOCTYPE};

use super::config::ConsoleConfig;
use super::http::{full, html as html_response};
use super::session::SessionUser;
use crate::ops::OpsBody;

/// The console's script (plain JavaScript, no dependencies).
const SCRIPT: &str = include_str!("../../../assets/console.js");
/// The console's stylesheet.
const STYLE: &str = include_str!("../../../assets/console.css");

/// `GET /ui/assets/{name}`.
pub(crate) fn asset(name: &str) -> Response<OpsBody> {
    let (body, kind) = match name {
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "console.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return super::http::text(StatusCode::NOT_FOUND, "no such asset"),
    };
    let mut response = Response::new(full(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    response
}

/// What a page tells the layout.
pub(crate) struct Page<'a> {
    /// `<title>` (the queue prefixes the pending count).
    pub(crate) title: String,
    /// `data-page` for the script.
    pub(crate) name: &'a str,
    /// Who is signed in (no navigation without).
    pub(crate) user: Option<&'a SessionUser>,
    /// Extra `data-*` attributes on `<body>` for the script.
    pub(crate) data: Vec<(&'static str, String)>,
}

/// The whole document around `content`.
pub(crate) fn layout(page: Page<'_>, content: Markup) -> Markup {
    let data = |name: &str| page.data.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) }
                link rel="stylesheet" href="/ui/assets/console.css";
                script src="/ui/assets/console.js" defer {}
            }
            body data-page=(page.name)
                data-allowed-origins=[data("allowed-origins")]
                data-conversation=[data("conversation")]
                data-pending=[data("pending")]
                data-next=[data("next")]
                data-prev=[data("prev")] {
                @if let Some(user) = page.user {
                    header.top {
                        nav aria-label="Main" {
                            a href="/ui/" { "Queue" }
                            a href="/ui/dead-letters" { "Dead letters" }
                            a href="/ui/queues" { "Queues" }
                            a href="/ui/stats" { "Stats" }
                        }
                        form.signout method="post" action="/ui/signout" {
                            span.who { (user.name) " · " (user.role) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (content) }
                div id="help" hidden role="dialog" aria-label="Keyboard shortcuts" {
                    h2 { "Keyboard shortcuts" }
                    dl {
                        dt { kbd { "j" } " / " kbd { "k" } } dd { "next / previous draft" }
                        dt { kbd { "a" } } dd { "approve" }
                        dt { kbd { "e" } } dd { "edit the reply" }
                        dt { kbd { "r" } } dd { "reject" }
                        dt { kbd { "x" } } dd { "escalate" }
                        dt { kbd { "Ctrl" } "/" kbd { "⌘" } "+" kbd { "Enter" } } dd { "send the form you are in" }
                        dt { kbd { "?" } } dd { "this help (Esc closes)" }
                    }
                }
            }
        }
    }
}

/// The sign-in page, with an error when a token was refused.
pub(crate) fn signin(
    config: &ConsoleConfig,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response<OpsBody> {
    let content = html! {
        section.signin {
            h1 { "Copydesk" }
            p { "Sign in with your own Chatwoot access token (Chatwoot → Profile settings → Access token). "
                "Copydesk checks it with Chatwoot once and does not keep it." }
            @if let Some(error) = error {
                p.error role="alert" id="signin-error" { (error) }
            }
            form method="post" action="/ui/signin" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Chatwoot access token" }
                input id="token" name="token" type="password" autocomplete="off" required maxlength="512" autofocus;
                button type="submit" id="signin" { "Sign in" }
            }
            p.hint { "Account " (config.account_id) " at " (config.chatwoot_base_url) }
        }
    };
    let page = Page {
        title: "Sign in · Copydesk".into(),
        name: "signin",
        user: None,
        data: Vec::new(),
    };
    html_response(status, layout(page, content))
}

/// A page that says in words why something was refused.
pub(crate) fn refusal(status: StatusCode, message: &str) -> Response<OpsBody> {
    let page = Page {
        title: format!(
            "{} · Copydesk",
            status.canonical_reason().unwrap_or("Refused")
        ),
        name: "refusal",
        user: None,
        data: Vec::new(),
    };
    let content = html! {
        section {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p.error role="alert" { (message) }
            p { a href="/ui/" { "Back to the queue" } }
        }
    };
    html_response(status, layout(page, content))
}

/// 404 with navigation.
pub(crate) fn not_found(user: &SessionUser, message: &str) -> Response<OpsBody> {
    let page = Page {
        title: "Not found · Copydesk".into(),
        name: "notfound",
        user: Some(user),
        data: Vec::new(),
    };
    let content = html! {
        h1 { "Not found" }
        p.error role="alert" { (message) }
        p { a href="/ui/" { "Back to the queue" } }
    };
    html_response(StatusCode::NOT_FOUND, layout(page, content))
}

/// "5 min", "3 h", "2 d" for a duration in ms.
pub(crate) fn age(ms: i64) -> String {
    let secs = (ms / 1000).max(0);
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    }
}
