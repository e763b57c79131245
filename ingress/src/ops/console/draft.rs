//! The draft page (`/ui/approvals/{id}`), the four decisions posted from it, and the
//! Dashboard App view of one conversation (`/ui/conversation`). Decisions go through
//! [`copydesk::operator::Operator::decide`], recorded with the signed-in agent's identity.

use std::collections::HashMap;

use copydesk::approvals::{now_ms, ApprovalItem, ApprovalStatus, Decision};
use copydesk::operator::{unusable_draft, DecisionOutcome, OperatorError};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use maud::{html, Markup};

use super::diff::{self, Chunk};
use super::evidence::{conversation_lines, sources, why};
use super::http::{html as html_response, read_form, redirect, safe_next};
use super::pages::{self, age, layout, Page};
use super::Ctx;
use crate::ops::request::{path_id, Query};
use crate::ops::OpsBody;

/// Longest reply an operator may send (edit, or reject with a reply), in characters.
pub const MAX_REPLY_CHARS: usize = 20_000;
/// Longest reject reason.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest escalation note.
pub const MAX_NOTE_CHARS: usize = 2_000;

/// A banner above the draft: what went wrong or what happened, in words.
pub(crate) struct Notice {
    status: StatusCode,
    message: String,
    link: Option<(String, String)>,
}

impl Notice {
    fn error(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            link: None,
        }
    }
}

/// `GET /ui/approvals/{id}` (or the same page with a notice after a failed decision).
pub(crate) async fn page(ctx: &Ctx<'_>, raw_id: &str, notice: Option<Notice>) -> Response<OpsBody> {
    let Ok(id) = path_id(raw_id, "approval") else {
        return pages::not_found(&ctx.user, "That is not an approval id.");
    };
    match ctx.ops.operator.approvals().get(&id).await {
        Ok(Some(item)) => {
            let status = notice.as_ref().map_or(StatusCode::OK, |n| n.status);
            let (prev, next) = neighbours(ctx, &id).await;
            let mut data = vec![];
            if let Some(prev) = prev {
                data.push(("prev", format!("/ui/approvals/{prev}")));
            }
            if let Some(next) = next {
                data.push(("next", format!("/ui/approvals/{next}")));
            }
            let content = view(ctx, &item, "/ui/", notice, None).await;
            let page = Page {
                title: format!("Draft #{} · Copydesk", item.doc.conversation_id),
                name: "draft",
                user: Some(&ctx.user),
                data,
            };
            html_response(status, layout(page, content))
        }
        Ok(None) => pages::not_found(&ctx.user, &format!("There is no approval item {id}.")),
        Err(error) => {
            tracing::warn!(%error, "console: approval not loaded");
            pages::refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "The draft cannot be read from Redis right now.",
            )
        }
    }
}

/// The previous and next pending drafts around `id` (within the first 500).
async fn neighbours(ctx: &Ctx<'_>, id: &str) -> (Option<String>, Option<String>) {
    let Ok(items) = ctx
        .ops
        .operator
        .approvals()
        .list(Some(ApprovalStatus::Pending), 0, 500)
        .await
    else {
        return (None, None);
    };
    let ids: Vec<&str> = items.iter().map(|i| i.doc.id.as_str()).collect();
    match ids.iter().position(|i| *i == id) {
        Some(at) => (
            at.checked_sub(1).map(|p| ids[p].to_owned()),
            ids.get(at + 1).map(|n| (*n).to_owned()),
        ),
        None => (None, ids.first().map(|n| (*n).to_owned())),
    }
}

/// What an operator typed, kept when a form is shown again with an error.
type Entered = HashMap<String, String>;

/// The draft and its forms (pending), or what was decided.
pub(crate) async fn view(
    ctx: &Ctx<'_>,
    item: &ApprovalItem,
    back: &str,
    notice: Option<Notice>,
    entered: Option<&Entered>,
) -> Markup {
    let doc = &item.doc;
    let field = |name: &str| entered.and_then(|e| e.get(name)).cloned();
    let action_url = format!("/ui/approvals/{}", doc.id);
    let chatwoot = format!(
        "{}/app/accounts/{}/conversations/{}",
        ctx.console.config.chatwoot_base_url, doc.account_id, doc.conversation_id
    );
    let top_relevance = doc
        .sources
        .iter()
        .map(|s| s.relevance)
        .fold(0.0_f32, f32::max);
    let newer = newer_draft(ctx, item).await;
    let evidence = {
        let mut conn = ctx.ops.queue.connection();
        copydesk::approval_facts::evidence(&mut conn, ctx.ops.queue.keys(), &doc.id)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, approval = %doc.id, "console: draft evidence not read");
                None
            })
    };
    html! {
        article.draft data-id=(doc.id) {
            @if let Some(notice) = &notice {
                div.notice.error role="alert" id="notice" {
                    p { (notice.message) }
                    @if let Some((href, label)) = &notice.link { p { a href=(href) { (label) } } }
                }
            }
            h1 { "Conversation #" (doc.conversation_id) " "
                span class={ "prio prio-" (doc.priority.as_str()) } { (doc.priority.as_str()) } }
            p.meta {
                "Recommended: " strong { (doc.action.as_str()) } " · confidence " strong { (doc.confidence) "%" }
                " · sentiment " (doc.sentiment) " · waiting " time data-created=(doc.created_at_ms) { (age(now_ms() - doc.created_at_ms)) }
                " · " a href=(chatwoot) target="_blank" rel="noopener" { "open in Chatwoot" }
            }
            p.flags {
                @if doc.safety { span.flag.flag-safety { "safety words found" } }
                @if doc.vip { span.flag.flag-vip { "VIP" } }
                @for why in &doc.suspicious { span.flag.flag-safety { "suspicious: " (why) } }
                @for d in &doc.degraded { span.flag.flag-degraded { "degraded: " (d) } }
                @if doc.placeholder { span.flag.flag-placeholder { "placeholder: write the reply yourself" } }
            }
            section aria-labelledby="context-h" {
                h2 id="context-h" { "Recent conversation (as the drafter saw it)" }
                (conversation_lines(evidence.as_ref()))
            }
            section aria-labelledby="customer-h" {
                h2 id="customer-h" { "Customer wrote" }
                blockquote.customer id="customer-message" { (doc.customer_message) }
            }
            section aria-labelledby="why-h" {
                h2 id="why-h" { "Why this confidence" }
                (why(doc, evidence.as_ref(), top_relevance))
                (sources(doc, evidence.as_ref()))
            }
            @if item.status == ApprovalStatus::Pending {
                (forms(ctx, item, &action_url, back, &field))
            } @else {
                section.decided id="decided" {
                    h2 { "Decided" }
                    p { (decided_words(item)) }
                    @if let Some(newer) = &newer {
                        p { a id="newer-draft" href={ "/ui/approvals/" (newer) } { "Open the newer draft" } }
                    }
                    h3 { "The draft was" }
                    blockquote.draft-text { (doc.draft) }
                }
            }
        }
    }
}

fn forms(
    ctx: &Ctx<'_>,
    item: &ApprovalItem,
    action_url: &str,
    back: &str,
    field: &dyn Fn(&str) -> Option<String>,
) -> Markup {
    let doc = &item.doc;
    let content = field("content").unwrap_or_else(|| doc.draft.clone());
    html! {
        section.decide aria-labelledby="reply-h" {
            h2 id="reply-h" { "Reply" }
            form id="form-edit" method="post" action={ (action_url) "/edit" } {
                input type="hidden" name="back" value=(back);
                label for="content" { "Reply to send (edit to change it)" }
                textarea id="content" name="content" rows="8" maxlength=(MAX_REPLY_CHARS) { (content) }
                div.buttons {
                    @if !unusable_draft(item) {
                        button type="submit" id="approve" form="form-approve" { "Approve" }
                    }
                    button type="submit" id="edit" { "Send edited…" }
                }
            }
            form id="form-approve" method="post" action={ (action_url) "/approve" } {
                input type="hidden" name="back" value=(back);
            }
            details id="reject-box" open[field("reason").is_some()] {
                summary { "Reject" }
                form id="form-reject" method="post" action={ (action_url) "/reject" } {
                    input type="hidden" name="back" value=(back);
                    label for="reason" { "Reason (required)" }
                    input id="reason" name="reason" maxlength=(MAX_REASON_CHARS) value=[field("reason")];
                    label for="reply" { "Your own reply to send instead (optional)" }
                    textarea id="reply" name="reply" rows="4" maxlength=(MAX_REPLY_CHARS) { (field("reply").unwrap_or_default()) }
                    button type="submit" id="reject" { "Reject" }
                }
            }
            details id="escalate-box" open[field("team").is_some()] {
                summary { "Escalate" }
                form id="form-escalate" method="post" action={ (action_url) "/escalate" } {
                    input type="hidden" name="back" value=(back);
                    label for="team" { "Team" }
                    select id="team" name="team" {
                        @for team in &ctx.console.config.teams {
                            option value=(team) selected[field("team").as_deref() == Some(team.as_str())] { (team) }
                        }
                    }
                    label for="note" { "Note for the team (required)" }
                    textarea id="note" name="note" rows="3" maxlength=(MAX_NOTE_CHARS) { (field("note").unwrap_or_default()) }
                    button type="submit" id="escalate" { "Escalate" }
                }
            }
        }
    }
}

/// The newest draft of the item's conversation when it is not this one.
async fn newer_draft(ctx: &Ctx<'_>, item: &ApprovalItem) -> Option<String> {
    let newest = ctx
        .ops
        .operator
        .approvals()
        .conversation_draft(item.doc.account_id, item.doc.conversation_id)
        .await
        .ok()
        .flatten()?;
    (newest != item.doc.id).then_some(newest)
}

/// What happened to a decided item, in words.
fn decided_words(item: &ApprovalItem) -> String {
    let who = item
        .decision
        .as_ref()
        .map(|d| d.decision.operator().to_owned())
        .unwrap_or_else(|| "an operator".into());
    let label = item.decision.as_ref().map(|d| d.decision.label());
    let verb = match label {
        Some("approve") => "approved",
        Some("edit") => "approved with edits",
        Some("reject") => "rejected",
        Some("escalate") => "escalated",
        _ => "decided",
    };
    match item.status {
        ApprovalStatus::Superseded => {
            "This draft was superseded by a newer customer message; nothing was sent.".into()
        }
        ApprovalStatus::Sent => {
            format!("This draft was already {verb} by {who}, and the reply was sent.")
        }
        ApprovalStatus::HeldBack => format!(
            "This draft was already {verb} by {who}; the reply was held back ({}).",
            item.held_back_reason
                .as_deref()
                .unwrap_or("the conversation changed")
        ),
        _ => format!("This draft was already {verb} by {who}."),
    }
}

/// Checks a decision form and builds the [`Decision`]; the error is shown in words.
fn parse(ctx: &Ctx<'_>, action: &str, form: &Entered) -> Result<Decision, String> {
    let operator = ctx.user.identity().label();
    let text = |name: &str| {
        form.get(name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let bounded = |name: &str, what: &str, max: usize| -> Result<String, String> {
        let value = text(name);
        let len = value.chars().count();
        if len > max {
            Err(format!(
                "The {what} is {len} characters long; at most {max} can be sent. Shorten it."
            ))
        } else {
            Ok(value)
        }
    };
    Ok(match action {
        "approve" => Decision::Approve { operator },
        "edit" => {
            let content = bounded("content", "reply", MAX_REPLY_CHARS)?;
            if content.is_empty() {
                return Err(
                    "The edited reply is empty; write a reply, or reject the draft.".into(),
                );
            }
            Decision::Edit { operator, content }
        }
        "reject" => {
            let reason = bounded("reason", "reason", MAX_REASON_CHARS)?;
            if reason.is_empty() {
                return Err("Say why the draft is rejected (the reason is required).".into());
            }
            let reply = bounded("reply", "reply", MAX_REPLY_CHARS)?;
            Decision::Reject {
                operator,
                reason,
                reply: (!reply.is_empty()).then_some(reply),
            }
        }
        "escalate" => {
            let team = text("team");
            if !ctx.console.config.teams.contains(&team) {
                return Err(format!(
                    "There is no team {team:?} in the routing file; choose one of: {}.",
                    ctx.console.config.teams.join(", ")
                ));
            }
            let note = bounded("note", "note", MAX_NOTE_CHARS)?;
            if note.is_empty() {
                return Err("Write a note for the team (it is posted on the conversation).".into());
            }
            Decision::Escalate {
                operator,
                team,
                note,
            }
        }
        other => {
            return Err(format!(
                "There is no decision {other:?}; use approve, edit, reject or escalate."
            ))
        }
    })
}

/// `POST /ui/approvals/{id}/{approve|edit|reject|escalate}`.
pub(crate) async fn decide(
    ctx: &Ctx<'_>,
    raw_id: &str,
    action: &str,
    request: Request<Incoming>,
) -> Response<OpsBody> {
    let Ok(id) = path_id(raw_id, "approval") else {
        return pages::not_found(&ctx.user, "That is not an approval id.");
    };
    let (parts, body) = request.into_parts();
    let form = match read_form(body, &parts.headers).await {
        Ok(form) => form,
        Err(error) => {
            return page(
                ctx,
                &id,
                Some(Notice::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    error.message(),
                )),
            )
            .await
        }
    };
    let back = safe_next(form.get("back").map(String::as_str));
    let decision = match parse(ctx, action, &form) {
        Ok(decision) => decision,
        Err(message) => {
            return again(
                ctx,
                &id,
                &back,
                Notice::error(StatusCode::UNPROCESSABLE_ENTITY, message),
                &form,
            )
            .await
        }
    };
    if let Decision::Edit { content, .. } = &decision {
        if form.get("confirm").map(String::as_str) != Some("1") {
            return preview(ctx, &id, content, &back).await;
        }
    }
    match ctx.ops.operator.decide(&id, decision).await {
        Ok(DecisionOutcome::Applied(_)) => {
            let joiner = if back.contains('?') { '&' } else { '?' };
            redirect(&format!("{back}{joiner}done={action}&id={}", super::http::encode(&id)))
        }
        Ok(DecisionOutcome::Conflict(status)) => {
            let item = ctx.ops.operator.approvals().get(&id).await.ok().flatten();
            let message = item.as_ref().map_or_else(
                || format!("This draft is no longer pending ({}).", status.as_str()),
                decided_words,
            );
            again(ctx, &id, &back, Notice::error(StatusCode::CONFLICT, message), &form).await
        }
        Ok(DecisionOutcome::NotFound) => pages::not_found(&ctx.user, &format!("There is no approval item {id}.")),
        Ok(DecisionOutcome::UnusableDraft) => again(ctx, &id, &back, Notice::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This draft is a placeholder with nothing to send: edit it with your own reply, or reject it.",
        ), &form).await,
        Err(OperatorError::FollowUpNotQueued { .. }) => again(ctx, &id, &back, Notice::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Your decision is stored, but its follow-up could not be queued; press the same button again in a moment.",
        ), &form).await,
        Err(error) => {
            tracing::warn!(%error, approval_id = %id, "console: decision failed");
            again(ctx, &id, &back, Notice::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Copydesk cannot reach its Redis right now; nothing was decided. Try again in a moment.",
            ), &form).await
        }
    }
}

/// The draft page (or the embedded view, when `back` is one) again, with a notice and what
/// the operator had typed.
async fn again(
    ctx: &Ctx<'_>,
    id: &str,
    back: &str,
    notice: Notice,
    form: &Entered,
) -> Response<OpsBody> {
    let Ok(Some(item)) = ctx.ops.operator.approvals().get(id).await else {
        return page(ctx, id, Some(notice)).await;
    };
    let status = notice.status;
    let name = if back.starts_with("/ui/conversation") {
        "conversation"
    } else {
        "draft"
    };
    let content = view(ctx, &item, back, Some(notice), Some(form)).await;
    let page = Page {
        title: format!("Draft #{} · Copydesk", item.doc.conversation_id),
        name,
        user: Some(&ctx.user),
        data: conversation_data(ctx, name, item.doc.conversation_id),
    };
    html_response(status, layout(page, content))
}

/// The word diff of an edit, with the button that sends it.
async fn preview(ctx: &Ctx<'_>, id: &str, content: &str, back: &str) -> Response<OpsBody> {
    let Ok(Some(item)) = ctx.ops.operator.approvals().get(id).await else {
        return pages::not_found(&ctx.user, &format!("There is no approval item {id}."));
    };
    let chunks = diff::words(&item.doc.draft, content);
    let body = html! {
        h1 { "Check your edit · conversation #" (item.doc.conversation_id) }
        p { "Words you removed are struck through, words you added are marked." }
        p.diff id="diff" {
            @for chunk in &chunks {
                @match chunk {
                    Chunk::Same(t) => span { (t) " " },
                    Chunk::Removed(t) => { del { (t) } " " },
                    Chunk::Added(t) => { ins { (t) } " " },
                }
            }
        }
        form id="form-confirm" method="post" action={ "/ui/approvals/" (id) "/edit" } {
            input type="hidden" name="back" value=(back);
            input type="hidden" name="confirm" value="1";
            label for="content" { "Reply to send" }
            textarea id="content" name="content" rows="8" maxlength=(MAX_REPLY_CHARS) { (content) }
            div.buttons {
                button type="submit" id="send-edited" { "Send edited reply" }
                a href={ "/ui/approvals/" (id) } { "Cancel" }
            }
        }
    };
    let name = if back.starts_with("/ui/conversation") {
        "conversation"
    } else {
        "preview"
    };
    let page = Page {
        title: "Check your edit · Copydesk".into(),
        name,
        user: Some(&ctx.user),
        data: conversation_data(ctx, name, item.doc.conversation_id),
    };
    html_response(StatusCode::OK, layout(page, body))
}

fn conversation_data(ctx: &Ctx<'_>, name: &str, conversation: i64) -> Vec<(&'static str, String)> {
    if name != "conversation" {
        return Vec::new();
    }
    vec![
        (
            "allowed-origins",
            ctx.console.config.frame_ancestors.join(" "),
        ),
        ("conversation", conversation.to_string()),
    ]
}

/// `GET /ui/conversation?c={display id}`: the Dashboard App. Without `c` it waits for
/// Chatwoot's `appContext`; the context only picks the conversation, the session authorizes.
pub(crate) async fn conversation(ctx: &Ctx<'_>, request: &Request<Incoming>) -> Response<OpsBody> {
    let query = Query::parse(request.uri().query());
    let account = ctx.console.config.account_id;
    let conversation = query
        .get("c")
        .and_then(|c| c.parse::<i64>().ok())
        .filter(|c| *c > 0);
    let wrong_account = query
        .get("a")
        .and_then(|a| a.parse::<i64>().ok())
        .is_some_and(|a| a != account);
    let back = conversation.map_or("/ui/conversation".to_owned(), |c| {
        format!("/ui/conversation?c={c}")
    });
    let flash = query
        .get("done")
        .map(|_| "Done: your decision is recorded.");
    let item = match conversation {
        Some(c) if !wrong_account => {
            let store = ctx.ops.operator.approvals();
            match store.conversation_draft(account, c).await {
                Ok(Some(id)) => store.get(&id).await.ok().flatten(),
                _ => None,
            }
        }
        _ => None,
    };
    let content = match (&item, conversation) {
        _ if wrong_account => {
            html! { p.error role="alert" { "This conversation belongs to another Chatwoot account than the one Copydesk serves." } }
        }
        (_, None) => {
            html! { p id="waiting" { "Waiting for Chatwoot to say which conversation is open…" } }
        }
        (Some(item), Some(_)) if item.status == ApprovalStatus::Pending => html! {
            @if let Some(flash) = flash { p.flash role="status" { (flash) } }
            (view(ctx, item, &back, None, None).await)
        },
        (Some(item), Some(c)) => html! {
            @if let Some(flash) = flash { p.flash role="status" { (flash) } }
            h1 { "Conversation #" (c) }
            p id="no-draft" { "No draft waiting." }
            p { "Latest: " (decided_words(item)) }
        },
        (None, Some(c)) => {
            html! { h1 { "Conversation #" (c) } p id="no-draft" { "No draft waiting." } }
        }
    };
    let mut data = conversation_data(ctx, "conversation", conversation.unwrap_or(0));
    if conversation.is_none() {
        data.retain(|(n, _)| *n != "conversation");
    }
    let page = Page {
        title: "Copydesk".into(),
        name: "conversation",
        user: Some(&ctx.user),
        data,
    };
    html_response(StatusCode::OK, layout(page, content))
}
