//! `copydesk reconcile [--since 2h] [--dry-run] [--report] [--json]`: one reconciliation pass
//! by hand (it waits for no interval, and takes the same lock as the sweep), or with
//! `--report` the latest passes and the missed customer messages.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use copydesk::chatwoot::ChatwootAccounts;
use copydesk::config::ProcessEnv;
use copydesk::queue::QueueClient;
use copydesk::reconcile::{MissedMessage, PassReport, ReconcileStore};

use crate::reconcile::{Finding, PassRequest, ReconcileConfig, Reconciler};

/// Missed messages and passes `--report` prints.
const REPORT_ROWS: usize = 50;

/// Runs a pass (or prints the report) and prints it.
pub(super) async fn run(
    queue: &QueueClient,
    since_ms: Option<i64>,
    dry_run: bool,
    report: bool,
    json: bool,
) -> anyhow::Result<()> {
    let store = ReconcileStore::for_queue(queue);
    if report {
        let passes = store.passes(10).await?;
        let missed = store.missed(REPORT_ROWS).await?;
        if json {
            let value = serde_json::json!({ "passes": passes, "missed": missed });
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            print!("{}", report_text(&passes, &missed));
        }
        return Ok(());
    }
    let config = ReconcileConfig::from_env(&ProcessEnv)?;
    let chatwoot = ChatwootAccounts::from_env(&ProcessEnv)
        .context("copydesk reconcile reads conversations from the Chatwoot API")?;
    let reconciler = Reconciler::new(queue.clone(), Arc::new(chatwoot), config);
    let Some(outcome) = reconciler.pass(PassRequest { since_ms, dry_run }).await? else {
        anyhow::bail!("another reconciliation pass is running (the sweep's lock is held); try again in a moment");
    };
    if json {
        let findings: Vec<serde_json::Value> = outcome.findings.iter().map(finding_json).collect();
        let value = serde_json::json!({ "report": outcome.report, "findings": findings });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", pass_text(&outcome.report, &outcome.findings));
    }
    Ok(())
}

fn finding_json(f: &Finding) -> serde_json::Value {
    serde_json::json!({
        "kind": f.kind, "account_id": f.account_id, "conversation_id": f.conversation_id,
        "message_id": f.message_id, "seen": f.seen, "drafted": f.drafted, "detail": f.detail,
    })
}

/// A pass as text: per account, then every event that was not already seen.
pub(crate) fn pass_text(report: &PassReport, findings: &[Finding]) -> String {
    let mut out = String::new();
    let verb = if report.dry_run { "would feed" } else { "fed" };
    for account in &report.accounts {
        let recovered: u64 = account.recovered.values().sum();
        let _ = writeln!(
            out,
            "account {}: {} conversation(s) active since {} · {} API call(s) · {verb} {recovered} lost event(s) · {} already seen · {} missed{}",
            account.account_id,
            account.conversations_scanned,
            time_text(account.since_ms / 1000),
            account.api_calls,
            account.already_seen,
            account.missed,
            account.error.as_deref().map(|e| format!(" · incomplete: {e}")).unwrap_or_default(),
        );
    }
    for f in findings.iter().filter(|f| !f.seen) {
        let message = f
            .message_id
            .map(|m| format!(" message {m}"))
            .unwrap_or_default();
        let drafted = if f.drafted { " (drafted)" } else { "" };
        let _ = writeln!(
            out,
            "  {:<16} {}:{}{message}{drafted}: {}",
            f.kind, f.account_id, f.conversation_id, f.detail
        );
    }
    out
}

fn report_text(passes: &[PassReport], missed: &[MissedMessage]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "latest passes:");
    if passes.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for pass in passes {
        let recovered: u64 = pass.recovered().values().sum();
        let missed: u64 = pass.accounts.iter().map(|a| a.missed).sum();
        let complete = pass.accounts.iter().all(|a| a.complete);
        let _ = writeln!(
            out,
            "  {} · {} ms · {} account(s) · recovered {recovered} · missed {missed}{}",
            time_text(pass.started_at_ms / 1000),
            pass.finished_at_ms - pass.started_at_ms,
            pass.accounts.len(),
            if complete { "" } else { " · incomplete" },
        );
    }
    let _ = writeln!(
        out,
        "missed customer messages (no webhook, older than the window; not drafted):"
    );
    if missed.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for m in missed {
        let _ = writeln!(
            out,
            "  {}:{} message {} written {}{}: {}",
            m.account_id,
            m.conversation_id,
            m.message_id,
            time_text(m.created_at),
            if m.answered {
                " (an agent answered)"
            } else {
                ""
            },
            m.excerpt
        );
    }
    out
}

fn time_text(unix_secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_secs.to_string())
}
