//! The queues page's reconciliation section: the latest sweep pass (what it recovered, whether
//! it completed) and the customer messages it found too late to draft ("missed"), each linked
//! to its conversation in Chatwoot.

use copydesk::approvals::now_ms;
use copydesk::reconcile::{MissedMessage, PassReport, ReconcileStore};
use maud::{html, Markup};

use super::pages::age;
use super::Ctx;

/// Missed messages listed on the page.
const LISTED: usize = 100;

/// The section, or a line saying it could not be read.
pub(crate) async fn section(ctx: &Ctx<'_>) -> Markup {
    let store = ReconcileStore::for_queue(&ctx.ops.queue);
    let (passes, missed) = match (store.passes(1).await, store.missed(LISTED).await) {
        (Ok(passes), Ok(missed)) => (passes, missed),
        _ => {
            return html! { h2 { "Reconciliation" } p.hint { "Could not read the sweep's state from Redis." } }
        }
    };
    let base = &ctx.console.config.chatwoot_base_url;
    html! {
        h2 { "Reconciliation" }
        p.hint {
            "Webhooks Chatwoot never delivered are found by the sweep (copydesk-reconciler) and drafted; "
            "customer messages older than its window are listed here instead."
        }
        (last_pass(passes.first()))
        h3 { "Missed customer messages (" (missed.len()) ")" }
        @if missed.is_empty() {
            p.hint { "None." }
        } @else {
            table.queue.missed {
                thead { tr { th { "Conversation" } th { "Written" } th { "Message" } th { "Answered in Chatwoot" } } }
                tbody {
                    @for m in &missed {
                        (missed_row(base, m))
                    }
                }
            }
        }
    }
}

fn last_pass(pass: Option<&PassReport>) -> Markup {
    let Some(pass) = pass else {
        return html! { p { "No pass has run yet." } };
    };
    let recovered: u64 = pass.recovered().values().sum();
    let incomplete: Vec<String> = pass
        .accounts
        .iter()
        .filter_map(|a| {
            a.error
                .as_ref()
                .map(|e| format!("account {}: {e}", a.account_id))
        })
        .collect();
    html! {
        p.last-pass {
            "Last pass " (age(now_ms() - pass.finished_at_ms)) " ago: "
            (pass.accounts.iter().map(|a| a.conversations_scanned).sum::<u64>()) " conversation(s) read, "
            (recovered) " lost event(s) recovered"
            @for (kind, n) in pass.recovered() { " · " (kind) " " (n) }
            "."
        }
        @for line in &incomplete { p.warning { "Incomplete: " (line) } }
    }
}

fn missed_row(base: &str, m: &MissedMessage) -> Markup {
    let url = format!(
        "{base}/app/accounts/{}/conversations/{}",
        m.account_id, m.conversation_id
    );
    html! {
        tr {
            td { a href=(url) target="_blank" rel="noopener" { (m.account_id) ":" (m.conversation_id) } }
            td { (age(now_ms() - m.created_at * 1000)) " ago" }
            td { (m.excerpt) }
            td { @if m.answered { "yes" } @else { "no" } }
        }
    }
}
