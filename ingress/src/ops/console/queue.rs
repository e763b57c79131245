//! The queue (`/ui/`): pending drafts urgent first, then oldest, paginated, with filters and
//! text search; and the one-row fragment the page's script fetches for each live event.

use copydesk::approvals::{now_ms, Action, ApprovalItem, ApprovalStatus, Priority};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use maud::{html, Markup};

use super::http::{encode, html as html_response};
use super::pages::{self, age, layout, Page};
use super::search::{Entry, MAX_SCAN};
use super::Ctx;
use crate::ops::request::Query;
use crate::ops::OpsBody;

/// Rows per page.
pub const PAGE_SIZE: usize = 50;
/// Longest search text.
pub const MAX_SEARCH: usize = 200;
/// How much of the customer's text a row shows.
const EXCERPT_CHARS: usize = 240;
/// The team filter value of drafts routing named no team for (shown as "—").
pub const NO_TEAM: &str = "none";

/// The queue's filters, from the query string.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filters {
    priority: Option<Priority>,
    action: Option<Action>,
    /// A team name, or [`NO_TEAM`].
    team: Option<String>,
    search: Option<String>,
    page: usize,
}

impl Filters {
    /// Parses the query; a bad value is an error in words.
    pub(crate) fn parse(query: &Query) -> Result<Self, String> {
        let priority = match query.get("priority") {
            None | Some("any") => None,
            Some(text) => Some(text.parse::<Priority>()?),
        };
        let action = match query.get("action") {
            None | Some("any") => None,
            Some("send") => Some(Action::Send),
            Some("review") => Some(Action::Review),
            Some("escalate") => Some(Action::Escalate),
            Some(other) => {
                return Err(format!("unknown action {other:?} (send, review, escalate)"))
            }
        };
        let team = match query.get("team").map(str::trim) {
            None | Some("any" | "") => None,
            Some(team) if team.chars().count() > copydesk::approval_facts::MAX_TEAM_CHARS => {
                return Err("the team name is too long".into())
            }
            Some(team) => Some(team.to_owned()),
        };
        let search = query.get("q").map(str::trim).filter(|q| !q.is_empty());
        if search.is_some_and(|q| q.chars().count() > MAX_SEARCH) {
            return Err(format!(
                "the search text is longer than {MAX_SEARCH} characters"
            ));
        }
        let page = query
            .number("page", 1, MAX_SCAN / PAGE_SIZE)
            .map_err(|e| e.to_string())?
            .max(1);
        Ok(Self {
            priority,
            action,
            team,
            search: search.map(str::to_lowercase),
            page,
        })
    }

    fn active(&self) -> bool {
        self.priority.is_some()
            || self.action.is_some()
            || self.team.is_some()
            || self.search.is_some()
    }

    fn team_matches(&self, team: Option<&str>) -> bool {
        match self.team.as_deref() {
            None => true,
            Some(NO_TEAM) => team.is_none(),
            Some(wanted) => team == Some(wanted),
        }
    }

    /// Whether an indexed pending draft passes the filters.
    pub(crate) fn matches_entry(&self, entry: &Entry) -> bool {
        self.priority.is_none_or(|p| p == entry.priority)
            && self.action.is_none_or(|a| a == entry.action)
            && self.team_matches(entry.team.as_deref())
            && self
                .search
                .as_ref()
                .is_none_or(|q| entry.text.contains(q.as_str()) || entry.conversation == *q)
    }

    /// Whether a pending item with its recorded team passes (as its index entry would).
    fn matches(&self, item: &ApprovalItem, team: Option<&str>) -> bool {
        self.matches_entry(&Entry::new(&item.doc, team.map(str::to_owned)))
    }

    fn query_string(&self, page: usize) -> String {
        let mut out = format!("?page={page}");
        if let Some(p) = self.priority {
            out.push_str(&format!("&priority={}", p.as_str()));
        }
        if let Some(a) = self.action {
            out.push_str(&format!("&action={}", a.as_str()));
        }
        if let Some(t) = &self.team {
            out.push_str(&format!("&team={}", encode(t)));
        }
        if let Some(q) = &self.search {
            out.push_str(&format!("&q={}", encode(q)));
        }
        out
    }
}

/// A pending item with the team routing recorded for it (`None`: "—").
pub(crate) type Listed = (ApprovalItem, Option<String>);

/// The recorded teams of `items`, in order.
async fn with_teams(
    ctx: &Ctx<'_>,
    items: Vec<ApprovalItem>,
) -> Result<Vec<Listed>, copydesk::approvals::ApprovalError> {
    let ids: Vec<String> = items.iter().map(|i| i.doc.id.clone()).collect();
    let mut conn = ctx.ops.queue.connection();
    let teams = copydesk::approval_facts::teams(&mut conn, ctx.ops.queue.keys(), &ids).await?;
    Ok(items.into_iter().zip(teams).collect())
}

/// One page of the queue and the number of pending items (all of them, and those matching).
pub(crate) async fn load(
    ctx: &Ctx<'_>,
    filters: &Filters,
) -> Result<(Vec<Listed>, u64, usize), copydesk::approvals::ApprovalError> {
    let store = ctx.ops.operator.approvals();
    let pending = store.pending_count().await?;
    let offset = (filters.page - 1) * PAGE_SIZE;
    if !filters.active() {
        if offset as u64 >= pending {
            return Ok((Vec::new(), pending, pending as usize));
        }
        let items = store
            .list(Some(ApprovalStatus::Pending), offset, PAGE_SIZE)
            .await?;
        return Ok((with_teams(ctx, items).await?, pending, pending as usize));
    }
    let ids = ctx
        .console
        .index
        .matching(&ctx.ops.queue, |entry| filters.matches_entry(entry))
        .await?;
    let total = ids.len();
    let page: Vec<&String> = ids.iter().skip(offset).take(PAGE_SIZE).collect();
    let fetched = futures::future::try_join_all(page.iter().map(|id| store.get(id))).await?;
    let matched = fetched
        .into_iter()
        .flatten()
        .map(|item| {
            let team = ctx.console.index.team(&item.doc.id);
            (item, team)
        })
        .collect();
    Ok((matched, pending, total))
}

/// `GET /ui/`.
pub(crate) async fn page(ctx: &Ctx<'_>, request: &Request<Incoming>) -> Response<OpsBody> {
    let query = Query::parse(request.uri().query());
    let (filters, filter_error) = match Filters::parse(&query) {
        Ok(filters) => (filters, None),
        Err(error) => (Filters::default(), Some(error)),
    };
    let filters = Filters {
        page: filters.page.max(1),
        ..filters
    };
    let (items, pending, matching) = match load(ctx, &filters).await {
        Ok(loaded) => loaded,
        Err(error) => {
            tracing::warn!(%error, "console: queue not loaded");
            return pages::refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The queue cannot be read from Redis right now; try again in a moment.",
            );
        }
    };
    let flash = query
        .get("done")
        .map(|done| flash_text(done, query.get("id")));
    html_response(
        StatusCode::OK,
        render(
            ctx,
            &filters,
            &items,
            pending,
            matching,
            flash,
            filter_error,
        ),
    )
}

fn flash_text(done: &str, id: Option<&str>) -> String {
    let what = match done {
        "approve" => "Approved: the reply is queued",
        "edit" => "Edited reply queued",
        "reject" => "Rejected",
        "escalate" => "Escalated: the team is assigned and a note is posted",
        _ => "Done",
    };
    match id {
        Some(id) => format!("{what} ({id})."),
        None => format!("{what}."),
    }
}

/// The queue page's markup (also what the benchmark renders).
pub(crate) fn render(
    ctx: &Ctx<'_>,
    filters: &Filters,
    items: &[Listed],
    pending: u64,
    matching: usize,
    flash: Option<String>,
    filter_error: Option<String>,
) -> Markup {
    let now = now_ms();
    let pages = matching.div_ceil(PAGE_SIZE).max(1);
    let content = html! {
        h1 { "Approval queue " span.count id="pending-count" { (pending) } " pending" }
        @if let Some(flash) = flash { p.flash role="status" { (flash) } }
        @if let Some(error) = filter_error { p.error role="alert" { (error) } }
        form.filters method="get" action="/ui/" role="search" {
            label { "Priority "
                select name="priority" {
                    option value="any" { "any" }
                    @for p in [Priority::Urgent, Priority::High, Priority::Normal, Priority::Low] {
                        option value=(p.as_str()) selected[filters.priority == Some(p)] { (p.as_str()) }
                    }
                }
            }
            label { "Action "
                select name="action" {
                    option value="any" { "any" }
                    @for a in [Action::Send, Action::Review, Action::Escalate] {
                        option value=(a.as_str()) selected[filters.action == Some(a)] { (a.as_str()) }
                    }
                }
            }
            label { "Team "
                select name="team" {
                    option value="any" { "any" }
                    @for t in &ctx.console.config.teams {
                        option value=(t) selected[filters.team.as_deref() == Some(t.as_str())] { (t) }
                    }
                    option value=(NO_TEAM) selected[filters.team.as_deref() == Some(NO_TEAM)] { "— (none)" }
                }
            }
            label { "Search "
                input type="search" name="q" maxlength=(MAX_SEARCH) value=[filters.search.as_deref()];
            }
            button type="submit" { "Filter" }
        }
        @if items.is_empty() {
            p.empty id="queue-empty" { "No draft is waiting." }
        }
        table.queue {
            caption.visually-hidden { "Pending drafts, urgent first, then oldest" }
            thead { tr {
                th scope="col" { "Priority" } th scope="col" { "Age" } th scope="col" { "Customer" }
                th scope="col" { "Action" } th scope="col" { "Confidence" } th scope="col" { "Team" } th scope="col" { "Flags" }
                th scope="col" { "Chatwoot" }
            } }
            tbody id="queue-rows" {
                @for (item, team) in items { (row(ctx, item, team.as_deref(), now)) }
            }
        }
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @if filters.page > 1 { a rel="prev" href={ "/ui/" (filters.query_string(filters.page - 1)) } { "← Newer page" } }
                span { "Page " (filters.page) " of " (pages) }
                @if filters.page < pages { a rel="next" href={ "/ui/" (filters.query_string(filters.page + 1)) } { "Next page →" } }
            }
        }
    };
    let page = Page {
        title: format!("({pending}) Queue · Copydesk"),
        name: "queue",
        user: Some(&ctx.user),
        data: vec![("pending", pending.to_string())],
    };
    layout(page, content)
}

/// The sort key of a row (as the store's: priority, then age), for live insertion.
fn score(item: &ApprovalItem) -> i64 {
    (item.doc.priority as i64) * 10_000_000_000_000 + item.doc.created_at_ms
}

/// One queue row.
pub(crate) fn row(ctx: &Ctx<'_>, item: &ApprovalItem, team: Option<&str>, now: i64) -> Markup {
    let doc = &item.doc;
    let excerpt: String = doc.customer_message.chars().take(EXCERPT_CHARS).collect();
    let cut = doc.customer_message.chars().count() > EXCERPT_CHARS;
    let chatwoot = format!(
        "{}/app/accounts/{}/conversations/{}",
        ctx.console.config.chatwoot_base_url, doc.account_id, doc.conversation_id
    );
    html! {
        tr id={ "row-" (doc.id) } data-id=(doc.id) data-score=(score(item))
            data-conversation={ (doc.account_id) "-" (doc.conversation_id) } {
            td { span class={ "prio prio-" (doc.priority.as_str()) } { (doc.priority.as_str()) } }
            td { time data-created=(doc.created_at_ms) { (age(now - doc.created_at_ms)) } }
            td.customer {
                a.open href={ "/ui/approvals/" (doc.id) } { (excerpt) @if cut { "…" } }
            }
            td { (doc.action.as_str()) }
            td { (doc.confidence) "%" }
            td.team { (team.unwrap_or("—")) }
            td.flags {
                @if doc.safety { span.flag.flag-safety { "safety" } }
                @if doc.vip { span.flag.flag-vip { "VIP" } }
                @if !doc.suspicious.is_empty() { span.flag.flag-safety { "suspicious" } }
                @if !doc.degraded.is_empty() { span.flag.flag-degraded { "degraded" } }
                @if doc.placeholder { span.flag.flag-placeholder { "placeholder" } }
            }
            td { a href=(chatwoot) target="_blank" rel="noopener" { "#" (doc.conversation_id) } }
        }
    }
}

/// `GET /ui/fragments/row/{id}?…filters`: the row of a pending item that matches the page's
/// filters (204 otherwise); `X-Copydesk-Pending` carries the pending count either way.
pub(crate) async fn row_fragment(
    ctx: &Ctx<'_>,
    raw_id: &str,
    request: &Request<Incoming>,
) -> Response<OpsBody> {
    let store = ctx.ops.operator.approvals();
    let filters = Filters::parse(&Query::parse(request.uri().query())).unwrap_or_default();
    let (item, pending) = match (
        crate::ops::request::path_id(raw_id, "approval"),
        store.pending_count().await,
    ) {
        (Ok(id), Ok(pending)) => (store.get(&id).await.ok().flatten(), pending),
        _ => (None, 0),
    };
    let mut response = match item {
        Some(item) if item.status == ApprovalStatus::Pending => {
            let team = with_teams(ctx, vec![item])
                .await
                .ok()
                .and_then(|mut rows| rows.pop());
            match team {
                Some((item, team)) if filters.matches(&item, team.as_deref()) => {
                    html_response(StatusCode::OK, row(ctx, &item, team.as_deref(), now_ms()))
                }
                _ => no_content(),
            }
        }
        _ => no_content(),
    };
    if let Ok(value) = HeaderValue::from_str(&pending.to_string()) {
        response.headers_mut().insert("x-copydesk-pending", value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn no_content() -> Response<OpsBody> {
    let mut empty = Response::new(super::http::full(bytes::Bytes::new()));
    *empty.status_mut() = StatusCode::NO_CONTENT;
    empty
}
