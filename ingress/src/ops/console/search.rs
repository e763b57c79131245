//! The queue's filter index: what filtering and text search need of each pending draft
//! (priority, action, team, conversation id and a lower-cased search text), kept in the
//! ingress's memory so a filtered page costs one `ZRANGE` of the pending ids plus the page's
//! own items, not a read and a JSON decode of every pending draft.
//!
//! Each request reads the pending ids (at most [`MAX_SCAN`], in queue order) and brings the
//! index up to date: ids it has not seen are read once (drafts never change), ids no longer
//! pending are dropped, and teams not recorded yet are asked for again at most every
//! [`TEAM_RECHECK`] (the assigner records them shortly after the draft). Search text is the
//! first [`MAX_TEXT_CHARS`] characters of the customer's message and of the draft, so the
//! index holds at most `MAX_SCAN` × 2 × `MAX_TEXT_CHARS` characters.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use copydesk::approvals::{Action, ApprovalError, DraftDoc, Priority};
use copydesk::queue::QueueClient;

/// Most pending items a filtered view scans.
pub const MAX_SCAN: usize = 20_000;

/// Characters of the customer's message, and of the draft, that search looks at.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// How often a draft without a recorded team is asked for it again.
pub const TEAM_RECHECK: Duration = Duration::from_secs(5);
/// Items read per round trip while filling the index.
const FILL_BATCH: usize = 500;

/// What filtering needs of one pending draft.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) priority: Priority,
    pub(crate) action: Action,
    pub(crate) conversation: String,
    /// Lower-cased customer message and draft (each cut to [`MAX_TEXT_CHARS`]).
    pub(crate) text: String,
    pub(crate) team: Option<String>,
    team_checked: Instant,
}

fn lowered(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((at, _)) => text[..at].to_lowercase(),
        None => text.to_lowercase(),
    }
}

impl Entry {
    /// The entry of `doc` with its recorded `team`.
    pub(crate) fn new(doc: &DraftDoc, team: Option<String>) -> Self {
        let mut text = lowered(&doc.customer_message);
        text.push('\n');
        text.push_str(&lowered(&doc.draft));
        Self {
            priority: doc.priority,
            action: doc.action,
            conversation: doc.conversation_id.to_string(),
            text,
            team,
            team_checked: Instant::now(),
        }
    }
}

/// The index (one per console; shared by its requests).
#[derive(Debug, Default)]
pub(crate) struct QueueIndex {
    entries: Mutex<HashMap<String, Entry>>,
}

impl QueueIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves at worst a stale entry: keep using it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pending ids in queue order (at most [`MAX_SCAN`]) that `keep` accepts, with the
    /// index brought up to date first.
    pub(crate) async fn matching(
        &self,
        queue: &QueueClient,
        keep: impl Fn(&Entry) -> bool,
    ) -> Result<Vec<String>, ApprovalError> {
        let keys = queue.keys();
        let mut conn = queue.connection();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(keys.approvals_pending())
            .arg(0)
            .arg(MAX_SCAN as i64 - 1)
            .query_async(&mut conn)
            .await?;
        let (missing, recheck) = {
            let mut entries = self.lock();
            if entries.len() > ids.len() {
                let live: HashSet<&str> = ids.iter().map(String::as_str).collect();
                entries.retain(|id, _| live.contains(id.as_str()));
            }
            let now = Instant::now();
            let mut missing = Vec::new();
            let mut recheck = Vec::new();
            for id in &ids {
                match entries.get(id) {
                    None => missing.push(id.clone()),
                    Some(e) if e.team.is_none() && now - e.team_checked >= TEAM_RECHECK => {
                        recheck.push(id.clone());
                    }
                    Some(_) => {}
                }
            }
            (missing, recheck)
        };
        for batch in missing.chunks(FILL_BATCH) {
            let mut pipe = redis::pipe();
            for id in batch {
                pipe.cmd("HMGET")
                    .arg(keys.approval(id))
                    .arg("doc")
                    .arg("team");
            }
            let rows: Vec<(Option<String>, Option<String>)> = pipe.query_async(&mut conn).await?;
            let mut entries = self.lock();
            for (id, (doc, team)) in batch.iter().zip(rows) {
                let Some(doc) = doc else { continue };
                match serde_json::from_str::<DraftDoc>(&doc) {
                    Ok(doc) => {
                        entries
                            .insert(id.clone(), Entry::new(&doc, team.filter(|t| !t.is_empty())));
                    }
                    Err(error) => {
                        tracing::warn!(approval = %id, %error, "console: corrupt draft skipped")
                    }
                }
            }
        }
        for batch in recheck.chunks(FILL_BATCH) {
            let teams = copydesk::approval_facts::teams(&mut conn, keys, batch).await?;
            let mut entries = self.lock();
            let now = Instant::now();
            for (id, team) in batch.iter().zip(teams) {
                if let Some(entry) = entries.get_mut(id) {
                    entry.team = team;
                    entry.team_checked = now;
                }
            }
        }
        let entries = self.lock();
        Ok(ids
            .into_iter()
            .filter(|id| entries.get(id).is_some_and(&keep))
            .collect())
    }

    /// The recorded team of a pending draft the index knows.
    pub(crate) fn team(&self, id: &str) -> Option<String> {
        self.lock().get(id).and_then(|e| e.team.clone())
    }

    /// How many drafts the index holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_text_is_lower_cased_and_bounded() {
        let doc = DraftDoc {
            id: "1-2-3".into(),
            account_id: 1,
            conversation_id: 2,
            message_id: 3,
            customer_message: format!("Where is my ORDER? {}", "x".repeat(MAX_TEXT_CHARS * 3)),
            draft: "It SHIPPED today.".into(),
            confidence: 50,
            action: Action::Review,
            priority: Priority::High,
            sentiment: "neutral".into(),
            sources: Vec::new(),
            degraded: Vec::new(),
            placeholder: false,
            safety: false,
            vip: false,
            suspicious: Vec::new(),
            drafter: "extractive".into(),
            delivery_id: "d".into(),
            received_at_ms: 0,
            created_at_ms: 0,
            traceparent: None,
            tracestate: None,
        };
        let entry = Entry::new(&doc, Some("Sales".into()));
        assert!(entry.text.starts_with("where is my order?"));
        assert!(entry.text.ends_with("\nit shipped today."));
        assert_eq!(entry.text.chars().count(), MAX_TEXT_CHARS + 1 + 17);
        assert_eq!(entry.conversation, "2");
        assert_eq!(entry.team.as_deref(), Some("Sales"));
        assert_eq!(QueueIndex::default().len(), 0);
    }
}
