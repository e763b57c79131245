//! The learning stream: one record per operator decision (what was drafted, what was decided,
//! how much the operator changed it), kept in the Redis stream `{prefix}:learning` for
//! exporting as JSONL (`copydesk learning export`) and tuning drafts later.
//!
//! The ops API calls [`LearningRecord::from_decision`] and [`append`] after every decision;
//! the CLI calls [`read_since`]. How much a reply was changed is measured twice: a char-level
//! Levenshtein distance ([`edit_distance`]) and a word-level diff ([`WordDiff`], e.g.
//! "+3 words −1 word") that reads well in a report.

use redis::aio::ConnectionLike;
use redis::RedisError;
use serde::{Deserialize, Serialize};

use crate::approvals::{ApprovalItem, Decision, SourceRef};
use crate::queue::Keys;

/// How many records the stream keeps (approximately, `XADD MAXLEN ~`). At a few KiB each this
/// bounds the stream to a few hundred MiB; export regularly to keep everything.
pub const MAX_RECORDS: usize = 100_000;
/// Records read per round trip by [`read_since`].
const PAGE: usize = 500;
/// Largest DP table (cells) [`edit_distance`] and [`WordDiff::between`] compute exactly, after
/// stripping the common prefix and suffix; beyond it they answer an upper bound, so a huge
/// rewrite never stalls the caller (16 M cells ≈ 20 ms).
pub const MAX_DIFF_CELLS: usize = 16_000_000;

/// One operator decision, as a training/evaluation example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearningRecord {
    /// The approval item.
    pub approval_id: String,
    /// Chatwoot account id.
    pub account_id: i64,
    /// Conversation display id.
    pub conversation_id: i64,
    /// `approve`, `edit`, `reject` or `escalate`.
    pub decision: String,
    /// Who decided.
    pub operator: String,
    /// The customer's message.
    pub customer_message: String,
    /// What the drafter proposed.
    pub draft: String,
    /// What the operator chose to send publicly: the draft (approve), the edited text (edit),
    /// the operator's own reply (reject with a reply); `None` when nothing is sent.
    pub final_text: Option<String>,
    /// Char-level Levenshtein distance draft → final text (`None` without a final text).
    pub edit_distance: Option<usize>,
    /// Word-level diff draft → final text (`None` without a final text).
    pub word_diff: Option<WordDiff>,
    /// Reject reason, if rejected.
    pub reason: Option<String>,
    /// Team, if escalated.
    pub team: Option<String>,
    /// Escalation note, if escalated.
    pub note: Option<String>,
    /// The draft's confidence, 0–100.
    pub confidence: u8,
    /// The drafter's recommended action (`send`, `review`, `escalate`).
    pub recommended_action: String,
    /// The draft's priority.
    pub priority: String,
    /// Which drafter made it.
    pub drafter: String,
    /// True when the draft was a placeholder (no draft could be made).
    pub placeholder: bool,
    /// Sources the draft cited.
    pub sources: Vec<SourceRef>,
    /// Whether the reply was posted: false at decision time; [`read_since`] fills it from the
    /// outcome the reply worker records ([`record_sent`]).
    pub was_sent: bool,
    /// When the decision was made (Unix ms).
    pub decided_at_ms: i64,
    /// When the reply was posted (Unix ms), filled on export.
    #[serde(default)]
    pub sent_at_ms: Option<i64>,
    /// True when the customer wrote again in the conversation after this decision (the next
    /// message only), filled on export from [`record_customer_reply`].
    #[serde(default)]
    pub customer_replied: bool,
    /// When the customer wrote again (Unix ms).
    #[serde(default)]
    pub customer_replied_at_ms: Option<i64>,
}

impl LearningRecord {
    /// The record for `decision` on `item` (the item as it was when decided).
    pub fn from_decision(item: &ApprovalItem, decision: &Decision, decided_at_ms: i64) -> Self {
        let doc = &item.doc;
        let final_text = match decision {
            Decision::Approve { .. } => Some(doc.draft.clone()),
            Decision::Edit { content, .. } => Some(content.clone()),
            Decision::Reject { reply, .. } => reply.clone(),
            Decision::Escalate { .. } => None,
        };
        let (reason, team, note) = match decision {
            Decision::Reject { reason, .. } => (Some(reason.clone()), None, None),
            Decision::Escalate { team, note, .. } => (None, Some(team.clone()), Some(note.clone())),
            _ => (None, None, None),
        };
        Self {
            approval_id: doc.id.clone(),
            account_id: doc.account_id,
            conversation_id: doc.conversation_id,
            decision: decision.label().to_owned(),
            operator: decision.operator().to_owned(),
            customer_message: doc.customer_message.clone(),
            draft: doc.draft.clone(),
            edit_distance: final_text.as_deref().map(|t| edit_distance(&doc.draft, t)),
            word_diff: final_text
                .as_deref()
                .map(|t| WordDiff::between(&doc.draft, t)),
            final_text,
            reason,
            team,
            note,
            confidence: doc.confidence,
            recommended_action: doc.action.as_str().to_owned(),
            priority: doc.priority.as_str().to_owned(),
            drafter: doc.drafter.clone(),
            placeholder: doc.placeholder,
            sources: doc.sources.clone(),
            was_sent: false,
            decided_at_ms,
            sent_at_ms: None,
            customer_replied: false,
            customer_replied_at_ms: None,
        }
    }
}

/// Words added and removed going from a draft to the final text (longest common subsequence
/// of whitespace-separated words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WordDiff {
    /// Words in the final text that are not in the draft's common subsequence.
    pub added: usize,
    /// Words of the draft that did not survive.
    pub removed: usize,
    /// Human summary, e.g. `+3 words −1 word` (`unchanged` when both are 0).
    pub summary: String,
}

impl WordDiff {
    /// The word diff `from` → `to`.
    pub fn between(from: &str, to: &str) -> Self {
        let a: Vec<&str> = from.split_whitespace().collect();
        let b: Vec<&str> = to.split_whitespace().collect();
        let common = lcs_len(&a, &b);
        let (added, removed) = (b.len() - common, a.len() - common);
        Self {
            added,
            removed,
            summary: summary(added, removed),
        }
    }
}

fn summary(added: usize, removed: usize) -> String {
    let words = |n: usize| if n == 1 { "word" } else { "words" };
    match (added, removed) {
        (0, 0) => "unchanged".to_owned(),
        (a, 0) => format!("+{a} {}", words(a)),
        (0, r) => format!("\u{2212}{r} {}", words(r)),
        (a, r) => format!("+{a} {} \u{2212}{r} {}", words(a), words(r)),
    }
}

/// Strips the common prefix and suffix of two sequences.
fn trim_common<'a, T: PartialEq>(a: &'a [T], b: &'a [T]) -> (&'a [T], &'a [T]) {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    (&a[..a.len() - suffix], &b[..b.len() - suffix])
}

/// Length of the longest common subsequence (exact up to [`MAX_DIFF_CELLS`], else a lower
/// bound: the common prefix and suffix).
fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let (ma, mb) = trim_common(a, b);
    let trimmed = a.len() - ma.len();
    if ma.is_empty() || mb.is_empty() || ma.len().saturating_mul(mb.len()) > MAX_DIFF_CELLS {
        return trimmed;
    }
    let mut prev = vec![0usize; mb.len() + 1];
    let mut row = vec![0usize; mb.len() + 1];
    for x in ma {
        for (j, y) in mb.iter().enumerate() {
            row[j + 1] = if x == y {
                prev[j] + 1
            } else {
                row[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    trimmed + prev[mb.len()]
}

/// Char-level Levenshtein distance (insert, delete, substitute; exact up to
/// [`MAX_DIFF_CELLS`], else the upper bound `max(len)` of the differing middle).
pub fn edit_distance(from: &str, to: &str) -> usize {
    let a: Vec<char> = from.chars().collect();
    let b: Vec<char> = to.chars().collect();
    let (a, b) = trim_common(&a, &b);
    if a.is_empty() || b.is_empty() || a.len().saturating_mul(b.len()) > MAX_DIFF_CELLS {
        return a.len().max(b.len());
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0usize; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(x != y);
            row[j + 1] = substitute.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// The stream key: `{prefix}:learning`.
pub fn learning_key(keys: &Keys) -> String {
    keys.learning()
}

/// How long outcomes (sent, customer replied) and the conversation's "last decision" pointer
/// are kept at most: 90 days (the retention sweep removes them with their approval, after
/// `COPYDESK_RETENTION_DAYS`, and trims the stream to it: `copydesk::retention`).
pub const OUTCOME_TTL_SECS: u64 = 90 * 24 * 3600;

/// The hash holding what happened after a decision: `{prefix}:learning:outcome:{approval}`.
fn outcome_key(keys: &Keys, approval_id: &str) -> String {
    keys.learning_outcome(approval_id)
}

/// The conversation's latest decided approval: `{prefix}:learning:last:{account}:{conv}`.
fn last_decision_key(keys: &Keys, account_id: i64, conversation_id: i64) -> String {
    keys.learning_last(account_id, conversation_id)
}

/// Records that the reply of `approval_id` was posted at `at_ms`.
pub async fn record_sent<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    approval_id: &str,
    at_ms: i64,
) -> Result<(), RedisError> {
    let key = outcome_key(keys, approval_id);
    redis::pipe()
        .cmd("HSETNX")
        .arg(&key)
        .arg("sent_at_ms")
        .arg(at_ms)
        .ignore()
        .cmd("EXPIRE")
        .arg(&key)
        .arg(OUTCOME_TTL_SECS)
        .ignore()
        .query_async(conn)
        .await
}

/// The customer wrote in a conversation at `at_ms`: fills `customer_replied` of the
/// conversation's latest decision, once (only the first message after a decision counts).
pub async fn record_customer_reply<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    account_id: i64,
    conversation_id: i64,
    at_ms: i64,
) -> Result<(), RedisError> {
    const SCRIPT: &str = r#"
local approval = redis.call('GET', KEYS[1])
if not approval then return 0 end
redis.call('DEL', KEYS[1])
local key = ARGV[1] .. approval
redis.call('HSETNX', key, 'customer_replied_at_ms', ARGV[2])
redis.call('EXPIRE', key, ARGV[3])
return 1
"#;
    let _: i64 = redis::Script::new(SCRIPT)
        .key(last_decision_key(keys, account_id, conversation_id))
        .arg(keys.learning_outcome_prefix())
        .arg(at_ms)
        .arg(OUTCOME_TTL_SECS)
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// Appends a record (`XADD … MAXLEN ~ MAX_RECORDS`, field `record` = JSON, plus `decision`
/// and `approval_id` for browsing with `redis-cli`) and makes it the conversation's latest
/// decision (for `customer_replied`); returns the entry id.
pub async fn append<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    record: &LearningRecord,
) -> Result<String, RedisError> {
    let json = serde_json::to_string(record).map_err(|e| {
        RedisError::from((
            redis::ErrorKind::Client,
            "learning record does not encode",
            e.to_string(),
        ))
    })?;
    let _: () = redis::cmd("SET")
        .arg(last_decision_key(
            keys,
            record.account_id,
            record.conversation_id,
        ))
        .arg(&record.approval_id)
        .arg("EX")
        .arg(OUTCOME_TTL_SECS)
        .query_async(conn)
        .await?;
    redis::cmd("XADD")
        .arg(learning_key(keys))
        .arg("MAXLEN")
        .arg("~")
        .arg(MAX_RECORDS)
        .arg("*")
        .arg("decision")
        .arg(&record.decision)
        .arg("approval_id")
        .arg(&record.approval_id)
        .arg("record")
        .arg(json)
        .query_async(conn)
        .await
}

/// Every record appended at or after `since_ms` (Unix ms; 0 for all), oldest first, with its
/// outcome filled in (`was_sent`, `customer_replied`). Entries that do not decode (a foreign
/// write) are skipped with a warning.
pub async fn read_since<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    since_ms: i64,
) -> Result<Vec<LearningRecord>, RedisError> {
    let key = learning_key(keys);
    let mut start = format!("{}-0", since_ms.max(0));
    let mut out = Vec::new();
    loop {
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(&key)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        let Some((last, _)) = entries.last() else {
            return Ok(out);
        };
        // Exclusive start for the next page: `(id` (Redis 6.2+).
        start = format!("({last}");
        let full_page = entries.len() == PAGE;
        let first_new = out.len();
        for (id, fields) in entries {
            let json = fields
                .chunks(2)
                .find(|pair| pair.first().is_some_and(|f| f == "record"))
                .and_then(|pair| pair.get(1));
            match json.map(|j| serde_json::from_str::<LearningRecord>(j)) {
                Some(Ok(record)) => out.push(record),
                Some(Err(error)) => {
                    tracing::warn!(%id, %error, "skipping an undecodable learning record");
                }
                None => tracing::warn!(%id, "skipping a learning entry without a record field"),
            }
        }
        fill_outcomes(conn, keys, &mut out[first_new..]).await?;
        if !full_page {
            return Ok(out);
        }
    }
}

/// Reads each record's outcome hash into it.
async fn fill_outcomes<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    records: &mut [LearningRecord],
) -> Result<(), RedisError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for record in records.iter() {
        pipe.hgetall(outcome_key(keys, &record.approval_id));
    }
    let outcomes: Vec<std::collections::HashMap<String, i64>> = pipe.query_async(conn).await?;
    for (record, outcome) in records.iter_mut().zip(outcomes) {
        record.sent_at_ms = outcome.get("sent_at_ms").copied();
        record.was_sent = record.sent_at_ms.is_some();
        record.customer_replied_at_ms = outcome.get("customer_replied_at_ms").copied();
        record.customer_replied = record.customer_replied_at_ms.is_some();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_char_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
        assert_eq!(edit_distance("héllo wörld", "hello world"), 2);
    }

    #[test]
    fn word_diff_summarises_added_and_removed_words() {
        let diff = WordDiff::between("we ship in two days", "we ship today in two business days");
        assert_eq!((diff.added, diff.removed), (2, 0));
        assert_eq!(diff.summary, "+2 words");
        let diff = WordDiff::between("a b c", "a x c d e");
        assert_eq!((diff.added, diff.removed), (3, 1));
        assert_eq!(diff.summary, "+3 words \u{2212}1 word");
        assert_eq!(
            WordDiff::between("same  text", "same text").summary,
            "unchanged"
        );
        assert_eq!(
            WordDiff::between("one two", "one").summary,
            "\u{2212}1 word"
        );
    }

    #[test]
    fn huge_rewrites_answer_a_bound_without_a_huge_table() {
        let a = "a".repeat(5_000);
        let b = "b".repeat(5_000);
        assert_eq!(edit_distance(&a, &b), 5_000);
        let a = "x ".repeat(5_000);
        let b = "y ".repeat(5_000);
        let diff = WordDiff::between(&a, &b);
        assert_eq!((diff.added, diff.removed), (5_000, 5_000));
    }
}
