//! What Copydesk keeps in Redis and for how long: the retention setting, the periodic sweep
//! that forgets what is past it, the per-kind memory report, and erasing one conversation.
//!
//! - Decided approval items (and their evidence) get a TTL of the retention when nothing more
//!   is owed (sent, held back, superseded, rejected, escalated); pending ones and decisions
//!   whose reply is not sent yet never expire. [`sweep`] removes their ids from the indexes
//!   (`approvals:all`, `approvals:decided`), the conversation pointers still naming them and
//!   their learning outcome, and trims the `learning` and `events` streams to the retention
//!   (`XTRIM … MINID`). The deadletter role runs it ([`SWEEP_INTERVAL`]).
//! - [`memory_by_kind`] reports the memory of Copydesk's keys per kind (`SCAN` + sampled
//!   `MEMORY USAGE`, extrapolated).
//! - [`erase_conversation`] deletes one conversation's data everywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use crate::approvals::{ApprovalError, ApprovalStatus, ApprovalStore};
use crate::queue::{Keys, QueueClient};

pub use crate::config::{retention_from_env, DEFAULT_RETENTION};
/// How often the deadletter role runs [`sweep`] and the lost follow-up sweep.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// Approvals forgotten per sweep batch.
const BATCH: usize = 500;

/// What one [`sweep`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Approval items forgotten (with their index entries, evidence and outcome).
    pub approvals: usize,
    /// Learning records trimmed by age.
    pub learning: u64,
    /// Events trimmed by age.
    pub events: u64,
}

/// Forgets what is older than the queue client's retention at `now_ms` (module docs).
pub async fn sweep(queue: &QueueClient, now_ms: i64) -> Result<SweepReport, ApprovalError> {
    let cutoff = now_ms.saturating_sub(queue.retention().as_millis() as i64);
    let store = ApprovalStore::for_queue(queue);
    let mut report = SweepReport::default();
    loop {
        let n = store.sweep_decided(cutoff, BATCH).await?;
        report.approvals += n;
        if n < BATCH {
            break;
        }
    }
    let mut conn = queue.connection();
    let keys = queue.keys();
    let minid = format!("{}-0", cutoff.max(0));
    report.learning = redis::cmd("XTRIM")
        .arg(keys.learning())
        .arg("MINID")
        .arg(&minid)
        .query_async(&mut conn)
        .await?;
    report.events = redis::cmd("XTRIM")
        .arg(keys.events())
        .arg("MINID")
        .arg(&minid)
        .query_async(&mut conn)
        .await?;
    Ok(report)
}

/// The memory of one kind of key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KindMemory {
    /// The kind (`approval items`, `learning stream`, …).
    pub kind: String,
    /// Keys of this kind.
    pub keys: u64,
    /// Keys whose `MEMORY USAGE` was asked.
    pub sampled: u64,
    /// Their bytes.
    pub sampled_bytes: u64,
    /// Bytes of all of them: the sampled average × keys.
    pub estimated_bytes: u64,
}

/// Memory of Copydesk's keys per kind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemoryReport {
    /// At most this many keys per kind are sampled; the rest are extrapolated.
    pub sample_per_kind: u64,
    /// One row per kind, largest first.
    pub kinds: Vec<KindMemory>,
    /// Sum of the estimates.
    pub total_estimated_bytes: u64,
}

/// The kind of a key under `keys`' prefix (the first part of its name, per `keys.rs`).
pub fn kind_of(keys: &Keys, key: &str) -> &'static str {
    let rest = key
        .strip_prefix(keys.prefix())
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or(key);
    let head = rest.split(':').next().unwrap_or(rest);
    match head {
        "approval" => "approval items",
        "approvals" => "approval indexes",
        "approval-evidence" => "approval evidence",
        "conversation" => "draft pointers",
        "events" => "events stream",
        "learning" if rest == "learning" => "learning stream",
        "learning" => "learning outcomes",
        "lifecycle" => "lifecycle",
        "workload" | "routing" => "routing",
        "assign" => "waiting list",
        "post-lock" => "post locks",
        "dedupe" => "dedupe markers",
        "dead" => "dead letters",
        "ui" => "console sessions",
        "stats" => "stats stream",
        "scratch" => "scratch",
        q if crate::jobs::ALL_QUEUES.contains(&q) => "queues",
        _ => "other",
    }
}

/// Counts every key under the prefix by kind (`SCAN`) and asks `MEMORY USAGE` of at most
/// `sample_per_kind` of each, extrapolating the rest.
pub async fn memory_by_kind(
    queue: &QueueClient,
    sample_per_kind: u64,
) -> Result<MemoryReport, redis::RedisError> {
    let keys = queue.keys();
    let mut conn = queue.connection();
    let mut counts: BTreeMap<&'static str, (u64, Vec<String>)> = BTreeMap::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}:*", keys.prefix()))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        for key in batch {
            let entry = counts.entry(kind_of(keys, &key)).or_default();
            entry.0 += 1;
            if (entry.1.len() as u64) < sample_per_kind {
                entry.1.push(key);
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut kinds = Vec::new();
    for (kind, (n, sample)) in counts {
        let mut pipe = redis::pipe();
        for key in &sample {
            pipe.cmd("MEMORY").arg("USAGE").arg(key);
        }
        let sizes: Vec<Option<u64>> = pipe.query_async(&mut conn).await?;
        let sampled_bytes: u64 = sizes.iter().flatten().sum();
        let sampled = sample.len() as u64;
        let estimated_bytes = sampled_bytes
            .saturating_mul(n)
            .checked_div(sampled)
            .unwrap_or(0);
        kinds.push(KindMemory {
            kind: kind.to_owned(),
            keys: n,
            sampled,
            sampled_bytes,
            estimated_bytes,
        });
    }
    kinds.sort_by_key(|k| std::cmp::Reverse(k.estimated_bytes));
    let total_estimated_bytes = kinds.iter().map(|k| k.estimated_bytes).sum();
    Ok(MemoryReport {
        sample_per_kind,
        kinds,
        total_estimated_bytes,
    })
}

/// Why a conversation could not be erased.
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    /// Redis failed.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// An approved reply of the conversation is not sent yet.
    #[error(
        "approval {0} of this conversation has a reply not sent yet (send_reply pending): \
         erase it after it is sent, or pass --force to drop it unsent"
    )]
    ReplyPending(String),
}

/// What [`erase_conversation`] removed (or would remove, on a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EraseReport {
    /// Approval ids of the conversation.
    pub approvals: Vec<String>,
    /// Keys deleted.
    pub keys: Vec<String>,
    /// Sorted-set and hash members removed, as `key member`.
    pub members: Vec<String>,
    /// Stream entries deleted, as `key id`.
    pub entries: Vec<String>,
    /// Dead letters purged.
    pub dead_letters: Vec<String>,
}

async fn scan_keys(conn: &mut ConnectionManager, pattern: &str) -> redis::RedisResult<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        out.extend(batch);
        cursor = next;
        if cursor == 0 {
            return Ok(out);
        }
    }
}

async fn zset_members(
    conn: &mut ConnectionManager,
    key: &str,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("ZSCAN")
            .arg(key)
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        // ZSCAN answers member, score, member, score…
        out.extend(batch.into_iter().step_by(2));
        cursor = next;
        if cursor == 0 {
            return Ok(out);
        }
    }
}

/// Stream entries (id) of `key` for which `matches(fields)` holds, read in pages.
async fn matching_entries(
    conn: &mut ConnectionManager,
    key: &str,
    matches: impl Fn(&BTreeMap<String, String>) -> bool,
) -> redis::RedisResult<Vec<String>> {
    let mut out = Vec::new();
    let mut start = "-".to_owned();
    loop {
        let page: Vec<(String, BTreeMap<String, String>)> = redis::cmd("XRANGE")
            .arg(key)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        let Some((last, _)) = page.last() else {
            return Ok(out);
        };
        start = format!("({last}");
        for (id, fields) in &page {
            if matches(fields) {
                out.push(id.clone());
            }
        }
        if page.len() < 1000 {
            return Ok(out);
        }
    }
}

fn names_conversation(json: &str, account: i64, conversation: i64) -> bool {
    serde_json::from_str::<serde_json::Value>(json).is_ok_and(|v| {
        v.get("account_id").and_then(|a| a.as_i64()) == Some(account)
            && v.get("conversation_id").and_then(|c| c.as_i64()) == Some(conversation)
    })
}

/// Deletes conversation `account:conversation`'s data everywhere: approval items, their
/// evidence, outcomes, escalation-note markers and post locks, their index entries, the
/// conversation's pointers and lifecycle state, its routing records, its learning records and
/// events (`XDEL`), and its dead letters. Refuses while a reply of it is not sent yet unless
/// `force`. With `dry_run` nothing is deleted: the report says what would be.
pub async fn erase_conversation(
    queue: &QueueClient,
    account: i64,
    conversation: i64,
    dry_run: bool,
    force: bool,
) -> Result<EraseReport, EraseError> {
    let keys = queue.keys();
    let mut conn = queue.connection();
    let id_pattern = format!("{account}-{conversation}-*");
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for key in scan_keys(
        &mut conn,
        &format!("{}{id_pattern}", keys.approval_prefix()),
    )
    .await?
    {
        if let Some(id) = key.strip_prefix(&keys.approval_prefix()) {
            ids.insert(id.to_owned());
        }
    }
    let indexes = [
        keys.approvals_all(),
        keys.approvals_pending(),
        keys.approvals_decided(),
        keys.approvals_awaiting(),
    ];
    let mut members = Vec::new();
    for index in &indexes {
        for id in zset_members(&mut conn, index, &id_pattern).await? {
            members.push((index.clone(), id.clone()));
            ids.insert(id);
        }
    }
    let store = ApprovalStore::for_queue(queue);
    if !force {
        for id in &ids {
            if let Ok(Some(item)) = store.get(id).await {
                let owed = matches!(
                    item.status,
                    ApprovalStatus::Approved | ApprovalStatus::Edited | ApprovalStatus::Rejected
                ) && item.reply_text().is_some();
                if owed {
                    return Err(EraseError::ReplyPending(id.clone()));
                }
            }
        }
    }
    let mut report = EraseReport {
        approvals: ids.iter().cloned().collect(),
        ..EraseReport::default()
    };
    let mut doomed: Vec<String> = Vec::new();
    for id in &ids {
        doomed.push(keys.approval(id));
        doomed.push(keys.approval_evidence(id));
        doomed.push(keys.learning_outcome(id));
        doomed.push(keys.escalation_note(account, id));
        doomed.extend(scan_keys(&mut conn, &format!("{}*{id}*", keys.post_lock(""))).await?);
    }
    doomed.push(keys.conversation_draft(account, conversation));
    doomed.push(keys.learning_last(account, conversation));
    doomed.push(keys.lifecycle(account, conversation));
    let mut existing = Vec::new();
    for key in doomed {
        let n: i64 = conn.exists(&key).await?;
        if n == 1 {
            existing.push(key);
        }
    }
    report.keys = existing;
    let tracked = format!("{account}:{conversation}");
    let conv = conversation.to_string();
    for (key, member) in [
        (keys.lifecycle_due(), tracked.clone()),
        (keys.waiting(account), conv.clone()),
    ] {
        let score: Option<f64> = conn.zscore(&key, &member).await?;
        if score.is_some() {
            members.push((key, member));
        }
    }
    let mut fields = Vec::new();
    for key in [keys.workload_owner(account), keys.waiting_entries(account)] {
        let present: bool = conn.hexists(&key, &conv).await?;
        if present {
            fields.push((key, conv.clone()));
        }
    }
    // Missed messages the reconciliation sweep listed (`copydesk::reconcile`).
    let missed_key = format!("{}:reconcile:missed", keys.prefix());
    let missed_prefix = format!("{account}:{conversation}:");
    let listed: Vec<String> = conn.zrange(&missed_key, 0, -1).await?;
    for member in listed.into_iter().filter(|m| m.starts_with(&missed_prefix)) {
        members.push((missed_key.clone(), member.clone()));
        fields.push((format!("{missed_key}:items"), member));
    }
    let id_set = ids.clone();
    let learning = matching_entries(&mut conn, &keys.learning(), |f| {
        f.get("approval_id").is_some_and(|id| id_set.contains(id))
            || f.get("record")
                .is_some_and(|r| names_conversation(r, account, conversation))
    })
    .await?;
    let events = matching_entries(&mut conn, &keys.events(), |f| {
        f.get("data")
            .is_some_and(|d| names_conversation(d, account, conversation))
    })
    .await?;
    let letters = crate::queue::DeadLetters::new(queue);
    let dead: Vec<String> = letters
        .list(&crate::queue::DeadLetterFilter {
            limit: Some(100_000),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::Client, "dead letters", e.to_string()))
        })?
        .into_iter()
        .filter(|l| names_conversation(&l.payload, account, conversation))
        .map(|l| l.id)
        .collect();
    report.members = members
        .iter()
        .chain(fields.iter())
        .map(|(k, m)| format!("{k} {m}"))
        .collect();
    report.entries = learning
        .iter()
        .map(|id| format!("{} {id}", keys.learning()))
        .chain(events.iter().map(|id| format!("{} {id}", keys.events())))
        .collect();
    report.dead_letters = dead.clone();
    if dry_run {
        return Ok(report);
    }
    let mut pipe = redis::pipe();
    for key in &report.keys {
        pipe.del(key).ignore();
    }
    for (key, member) in &members {
        pipe.zrem(key, member).ignore();
    }
    for (key, field) in &fields {
        pipe.hdel(key, field).ignore();
    }
    for id in &learning {
        pipe.xdel(keys.learning(), &[id]).ignore();
    }
    for id in &events {
        pipe.xdel(keys.events(), &[id]).ignore();
    }
    let _: () = pipe.query_async(&mut conn).await?;
    for id in &dead {
        if let Err(error) = letters.purge(id).await {
            tracing::warn!(%id, %error, "dead letter of an erased conversation not purged");
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_reads_days_and_seconds() {
        let mut env = std::collections::HashMap::new();
        assert_eq!(retention_from_env(&env).ok(), Some(DEFAULT_RETENTION));
        env.insert("COPYDESK_RETENTION_DAYS".to_owned(), "7".to_owned());
        assert_eq!(
            retention_from_env(&env).ok(),
            Some(Duration::from_secs(7 * 86_400))
        );
        env.insert("COPYDESK_RETENTION_SECS".to_owned(), "3".to_owned());
        assert_eq!(retention_from_env(&env).ok(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn kinds_follow_the_key_names() {
        let keys = Keys::new("p");
        assert_eq!(kind_of(&keys, &keys.approval("1-2-3")), "approval items");
        assert_eq!(kind_of(&keys, &keys.learning()), "learning stream");
        assert_eq!(
            kind_of(&keys, &keys.learning_last(1, 2)),
            "learning outcomes"
        );
        assert_eq!(kind_of(&keys, &keys.stream("send_reply")), "queues");
        assert_eq!(
            kind_of(&keys, &keys.approvals_decided()),
            "approval indexes"
        );
    }
}
