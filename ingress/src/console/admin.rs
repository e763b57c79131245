//! Dead letters (`/ui/dead-letters`: list with queue and error filters, detail, retry one,
//! retry a queue, purge) and queue depths (`/ui/queues`). Anyone signed in may look; only
//! Chatwoot administrators and the ops-token admin may retry or purge — checked here, on
//! the server, whatever the page shows.

use copydesk::approvals::now_ms;
use copydesk::jobs::ALL_QUEUES;
use copydesk::queue::DeadLetterFilter;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use maud::html;

use super::http::{encode, html as html_response, redirect};
use super::pages::{self, age, layout, Page};
use super::Ctx;
use crate::ops::request::{path_id, Query};
use crate::ops::OpsBody;

/// Dead letters listed per page.
const LIST_LIMIT: usize = 200;
/// Longest error filter.
const MAX_ERROR_FILTER: usize = 200;

fn unavailable() -> Response<OpsBody> {
    pages::refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "Copydesk cannot reach its Redis right now; try again in a moment.",
    )
}

/// `GET /ui/dead-letters?queue=&error=`.
pub(crate) async fn dead_letters(ctx: &Ctx<'_>, request: &Request<Incoming>) -> Response<OpsBody> {
    let query = Query::parse(request.uri().query());
    let queue = query
        .get("queue")
        .and_then(|q| ALL_QUEUES.iter().find(|n| **n == q))
        .copied();
    let error = query
        .get("error")
        .map(|e| e.chars().take(MAX_ERROR_FILTER).collect::<String>());
    let filter = DeadLetterFilter {
        queue: queue.map(str::to_owned),
        error_contains: error.clone(),
        limit: Some(LIST_LIMIT),
    };
    let Ok(letters) = ctx.ops.dead_letters.list(&filter).await else {
        return unavailable();
    };
    let now = now_ms();
    let admin = ctx.user.is_admin();
    let content = html! {
        h1 { "Dead letters" }
        @if let Some(done) = query.get("done") { p.flash role="status" { (done) } }
        @if !admin { p.hint { "Only Chatwoot administrators may retry or purge dead letters." } }
        form.filters method="get" action="/ui/dead-letters" role="search" {
            label { "Queue "
                select name="queue" {
                    option value="" { "any" }
                    @for q in ALL_QUEUES { option value=(q) selected[queue == Some(q)] { (q) } }
                }
            }
            label { "Error contains " input type="search" name="error" maxlength=(MAX_ERROR_FILTER) value=[error.as_deref()]; }
            button type="submit" { "Filter" }
        }
        @if admin {
            @if let Some(q) = queue {
                form method="post" action={ "/ui/dead-letters/retry?queue=" (q) } {
                    button type="submit" id="retry-queue" { "Retry all of " (q) }
                }
            }
        }
        @if letters.is_empty() { p.empty { "No dead letters." } }
        table.queue {
            thead { tr { th { "Queue" } th { "Error" } th { "Attempts" } th { "Last failure" } th { "" } } }
            tbody {
                @for letter in &letters {
                    tr data-id=(letter.id) {
                        td { (letter.queue) }
                        td { a href={ "/ui/dead-letters/" (encode(&letter.id)) } { (letter.error.chars().take(160).collect::<String>()) } }
                        td { (letter.attempts) }
                        td { (age(now - letter.last_failed_at_ms)) " ago" }
                        td.actions {
                            @if admin {
                                form method="post" action={ "/ui/dead-letters/" (encode(&letter.id)) "/retry" } { button type="submit" { "Retry" } }
                                form method="post" action={ "/ui/dead-letters/" (encode(&letter.id)) "/purge" } { button.danger type="submit" { "Purge" } }
                            }
                        }
                    }
                }
            }
        }
    };
    let page = Page {
        title: "Dead letters · Copydesk".into(),
        name: "dead-letters",
        user: Some(&ctx.user),
        data: Vec::new(),
    };
    html_response(StatusCode::OK, layout(page, content))
}

/// `GET /ui/dead-letters/{id}`.
pub(crate) async fn dead_letter(ctx: &Ctx<'_>, raw_id: &str) -> Response<OpsBody> {
    let Ok(id) = path_id(raw_id, "dead letter") else {
        return pages::not_found(&ctx.user, "That is not a dead letter id.");
    };
    let letter = match ctx.ops.dead_letters.get(&id).await {
        Ok(Some(letter)) => letter,
        Ok(None) => return pages::not_found(&ctx.user, &format!("There is no dead letter {id}.")),
        Err(_) => return unavailable(),
    };
    let now = now_ms();
    let payload = serde_json::from_str::<serde_json::Value>(&letter.payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| letter.payload.clone());
    let content = html! {
        h1 { "Dead letter of " (letter.queue) }
        dl.detail {
            dt { "Error" } dd { (letter.error) }
            dt { "Attempts" } dd { (letter.attempts) @if letter.permanent { " (permanent failure)" } }
            dt { "First failure" } dd { (age(now - letter.first_failed_at_ms)) " ago" }
            dt { "Last failure" } dd { (age(now - letter.last_failed_at_ms)) " ago" }
            dt { "Redriven" } dd { (letter.redrives) " time(s)" }
        }
        h2 { "Payload" }
        pre.payload { (payload) }
        @if ctx.user.is_admin() {
            div.buttons {
                form method="post" action={ "/ui/dead-letters/" (encode(&letter.id)) "/retry" } { button type="submit" { "Retry" } }
                form method="post" action={ "/ui/dead-letters/" (encode(&letter.id)) "/purge" } { button.danger type="submit" { "Purge" } }
            }
        }
    };
    let page = Page {
        title: "Dead letter · Copydesk".into(),
        name: "dead-letter",
        user: Some(&ctx.user),
        data: Vec::new(),
    };
    html_response(StatusCode::OK, layout(page, content))
}

/// `POST /ui/dead-letters/{id}/retry`, `…/{id}/purge`, `/ui/dead-letters/retry?queue=`.
pub(crate) async fn dead_letter_action(
    ctx: &Ctx<'_>,
    rest: &[&str],
    request: &Request<Incoming>,
) -> Response<OpsBody> {
    if !ctx.user.is_admin() {
        return pages::refusal(
            StatusCode::FORBIDDEN,
            "Only Chatwoot administrators may retry or purge dead letters.",
        );
    }
    let query = Query::parse(request.uri().query());
    let letters = &ctx.ops.dead_letters;
    let done = match rest {
        ["retry"] => {
            let queue = query
                .get("queue")
                .and_then(|q| ALL_QUEUES.iter().find(|n| **n == q))
                .copied();
            letters
                .retry_all(queue)
                .await
                .map(|n| format!("{n} dead letter(s) retried."))
        }
        [raw, action @ ("retry" | "purge")] => {
            let Ok(id) = path_id(raw, "dead letter") else {
                return pages::not_found(&ctx.user, "That is not a dead letter id.");
            };
            tracing::info!(dead_letter = %id, operator = %ctx.user.name, action, "console: dead letter action");
            if *action == "retry" {
                letters
                    .retry(&id)
                    .await
                    .map(|()| "Dead letter retried.".to_owned())
            } else {
                letters
                    .purge(&id)
                    .await
                    .map(|()| "Dead letter purged.".to_owned())
            }
        }
        _ => return pages::not_found(&ctx.user, "There is no such dead-letter action."),
    };
    match done {
        Ok(message) => redirect(&format!("/ui/dead-letters?done={}", encode(&message))),
        Err(error) => pages::refusal(StatusCode::CONFLICT, &format!("That did not work: {error}")),
    }
}

/// `GET /ui/queues`.
pub(crate) async fn queues(ctx: &Ctx<'_>) -> Response<OpsBody> {
    let mut rows = Vec::new();
    for queue in ALL_QUEUES {
        match ctx.ops.queue.depth(queue).await {
            Ok(depth) => rows.push((queue, depth)),
            Err(_) => return unavailable(),
        }
    }
    let content = html! {
        h1 { "Queues" }
        table.queue {
            thead { tr { th { "Queue" } th { "Pending" } th { "Running" } th { "Scheduled" } th { "Dead" } th { "Oldest" } } }
            tbody {
                @for (queue, depth) in &rows {
                    tr {
                        td { (queue) } td { (depth.pending) } td { (depth.running) } td { (depth.scheduled) }
                        td { (depth.dead) }
                        td { @if depth.oldest_age_secs > 0.0 { (age((depth.oldest_age_secs * 1000.0) as i64)) } @else { "–" } }
                    }
                }
            }
        }
    };
    let page = Page {
        title: "Queues · Copydesk".into(),
        name: "queues",
        user: Some(&ctx.user),
        data: Vec::new(),
    };
    html_response(StatusCode::OK, layout(page, content))
}
