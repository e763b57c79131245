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
use crate::spool::{Spool, SpoolStatus, REJECTED_FILE};

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
    let spool = match &ctx.ops.spool {
        Some(spool) => Some(spool_state(spool).await),
        None => None,
    };
    let reconciliation = super::reconcile::section(ctx).await;
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
        (spool_section(spool.as_ref()))
        (reconciliation)
    };
    let page = Page {
        title: "Queues · Copydesk".into(),
        name: "queues",
        user: Some(&ctx.user),
        data: Vec::new(),
    };
    html_response(StatusCode::OK, layout(page, content))
}

/// Most directory entries the queues page reads from the spool directory.
const MAX_SPOOL_ENTRIES: usize = 10_000;

/// The spool as the queues page shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpoolView {
    /// Webhooks on disk not yet in Redis, and whether another would fit.
    pub(crate) status: SpoolStatus,
    /// True while webhooks go to the spool first (Redis was found unreachable, or records wait).
    pub(crate) spooling: bool,
    /// Segment files on disk and their bytes.
    pub(crate) files: usize,
    /// Bytes of the segment files.
    pub(crate) file_bytes: u64,
    /// Age of the oldest segment file (by its modification time).
    pub(crate) oldest_ms: Option<i64>,
    /// Bytes of `rejected.jsonl` (records set aside for inspection), if it exists.
    pub(crate) rejected_bytes: Option<u64>,
    /// The directory listing stopped at [`MAX_SPOOL_ENTRIES`].
    pub(crate) capped: bool,
    /// Why the directory could not be read, if it could not.
    pub(crate) error: Option<String>,
}

impl SpoolView {
    /// What the drain is doing, in words.
    pub(crate) fn drain_state(&self) -> &'static str {
        if !self.status.accepting {
            "not accepting: full or unwritable, webhooks get 503 while Redis is down"
        } else if self.status.events > 0 {
            "draining: spooled webhooks are replayed into Redis, oldest first"
        } else if self.spooling {
            "spooling: Redis was unreachable; webhooks go to disk until it answers"
        } else {
            "idle: empty, webhooks go straight to Redis"
        }
    }
}

/// Reads the spool's counters and lists its directory (on the blocking pool, bounded).
async fn spool_state(spool: &Spool) -> SpoolView {
    let dir = spool.dir().to_path_buf();
    let status = spool.status();
    let spooling = spool.is_spooling();
    let listed = tokio::task::spawn_blocking(move || list_spool_dir(&dir)).await;
    let (files, file_bytes, oldest, rejected_bytes, capped, error) = match listed {
        Ok(Ok(listing)) => (
            listing.files,
            listing.bytes,
            listing.oldest,
            listing.rejected,
            listing.capped,
            None,
        ),
        Ok(Err(error)) => (0, 0, None, None, false, Some(error.to_string())),
        Err(error) => (0, 0, None, None, false, Some(error.to_string())),
    };
    let oldest_ms = oldest
        .and_then(|t| t.elapsed().ok())
        .map(|d| d.as_millis() as i64);
    SpoolView {
        status,
        spooling,
        files,
        file_bytes,
        oldest_ms,
        rejected_bytes,
        capped,
        error,
    }
}

struct Listing {
    files: usize,
    bytes: u64,
    oldest: Option<std::time::SystemTime>,
    rejected: Option<u64>,
    capped: bool,
}

fn list_spool_dir(dir: &std::path::Path) -> std::io::Result<Listing> {
    let mut listing = Listing {
        files: 0,
        bytes: 0,
        oldest: None,
        rejected: None,
        capped: false,
    };
    for (n, entry) in std::fs::read_dir(dir)?.enumerate() {
        if n >= MAX_SPOOL_ENTRIES {
            listing.capped = true;
            break;
        }
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(meta) = entry.metadata() else { continue };
        if name == REJECTED_FILE {
            listing.rejected = Some(meta.len());
        } else if name.starts_with("segment-") && name.ends_with(".jsonl") {
            listing.files += 1;
            listing.bytes += meta.len();
            if let Ok(modified) = meta.modified() {
                listing.oldest = Some(listing.oldest.map_or(modified, |o| o.min(modified)));
            }
        }
    }
    Ok(listing)
}

/// "12.3 KiB" for a byte count.
fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The spool section of the queues page.
fn spool_section(spool: Option<&SpoolView>) -> maud::Markup {
    html! {
        section aria-labelledby="spool-h" id="spool" {
            h2 id="spool-h" { "Spool" }
            @match spool {
                None => { p.hint id="spool-off" { "No spool: COPYDESK_SPOOL_DIR is not set, so webhooks get 503 while Redis is down." } }
                Some(view) => {
                    p id="spool-state" { strong { (view.drain_state()) } }
                    dl.detail {
                        dt { "Spooled webhooks" } dd id="spool-events" { (view.status.events) }
                        dt { "Files" } dd id="spool-files" { (view.files) @if view.capped { " (listing stopped at " (MAX_SPOOL_ENTRIES) " entries)" } }
                        dt { "Bytes" } dd id="spool-bytes" { (bytes_text(view.file_bytes)) }
                        dt { "Oldest file" } dd id="spool-oldest" { @match view.oldest_ms { Some(ms) => { (age(ms)) " old" } None => { "–" } } }
                        @if let Some(rejected) = view.rejected_bytes {
                            dt { "Set aside" } dd { (REJECTED_FILE) ", " (bytes_text(rejected)) " (kept for inspection)" }
                        }
                    }
                    @if let Some(error) = &view.error { p.error role="alert" { "The spool directory cannot be read: " (error) } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes_text(0), "0 B");
        assert_eq!(bytes_text(1023), "1023 B");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn the_drain_state_names_what_the_spool_does() {
        let mut view = SpoolView {
            status: SpoolStatus {
                events: 0,
                bytes: 0,
                accepting: true,
            },
            spooling: false,
            files: 0,
            file_bytes: 0,
            oldest_ms: None,
            rejected_bytes: None,
            capped: false,
            error: None,
        };
        assert!(view.drain_state().starts_with("idle"));
        view.spooling = true;
        assert!(view.drain_state().starts_with("spooling"));
        view.status.events = 3;
        assert!(view.drain_state().starts_with("draining"));
        view.status.accepting = false;
        assert!(view.drain_state().starts_with("not accepting"));
    }

    #[test]
    fn the_directory_listing_counts_segments_and_the_rejected_file() {
        let dir = std::env::temp_dir().join(format!("copydesk-spool-view-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("segment-00000000000000000001.jsonl"), b"abc").expect("write");
        std::fs::write(dir.join("segment-00000000000000000002.jsonl"), b"defgh").expect("write");
        std::fs::write(dir.join(REJECTED_FILE), b"xy").expect("write");
        std::fs::write(dir.join("spool.lock"), b"").expect("write");
        let listing = list_spool_dir(&dir).expect("listed");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(listing.files, 2);
        assert_eq!(listing.bytes, 8);
        assert_eq!(listing.rejected, Some(2));
        assert!(listing.oldest.is_some());
        assert!(!listing.capped);
    }
}
