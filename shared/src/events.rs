//! The operator event stream: what a live operator view needs to hear about (new drafts,
//! decisions), as a bounded Redis stream `{prefix}:events`.
//!
//! Producers ([`publish_event`]) are the drafter (a new approval item) and the ops API (a
//! decision). The ops API's `GET /api/events` turns the stream into server-sent events: it
//! finds the newest id with [`last_event_id`] before answering, then loops on
//! [`read_events`] (`XREAD BLOCK`) from there, so no event published after the client got
//! its response headers is missed. A stream (rather than pub/sub) lets a reconnecting client
//! resume from its `Last-Event-ID`.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::RedisError;

use crate::queue::Keys;

/// How many events the stream keeps (approximately, `XADD MAXLEN ~`): enough for a client
/// reconnecting after a few minutes, small enough to never matter for memory (~1 KiB each).
pub const MAX_EVENTS: usize = 10_000;
/// Most events one [`read_events`] call returns.
pub const READ_BATCH: usize = 100;

/// What an event is about; the SSE `event:` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A new approval item waits for an operator (published by the drafter).
    Draft,
    /// An operator decided on an approval item (published by the ops API).
    Decision,
}

impl EventKind {
    /// The stable wire name (`draft`, `decision`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Decision => "decision",
        }
    }
}

/// One event as read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsEvent {
    /// The stream entry id (`{ms}-{seq}`): the SSE `id:`, usable as `Last-Event-ID`.
    pub id: String,
    /// The kind as written (an [`EventKind`] name, or a newer producer's kind).
    pub kind: String,
    /// The JSON payload as written.
    pub data: String,
}

/// The stream key: `{prefix}:events`.
pub fn events_key(keys: &Keys) -> String {
    keys.events()
}

/// Appends an event (`XADD … MAXLEN ~ MAX_EVENTS`); returns its id.
pub async fn publish_event<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    kind: EventKind,
    data: &serde_json::Value,
) -> Result<String, RedisError> {
    redis::cmd("XADD")
        .arg(events_key(keys))
        .arg("MAXLEN")
        .arg("~")
        .arg(MAX_EVENTS)
        .arg("*")
        .arg("kind")
        .arg(kind.as_str())
        .arg("data")
        .arg(data.to_string())
        .query_async(conn)
        .await
}

/// The id of the newest event, or `0-0` when there is none: the point to read after.
pub async fn last_event_id<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
) -> Result<String, RedisError> {
    let newest: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
        .arg(events_key(keys))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(newest
        .into_iter()
        .next()
        .map(|(id, _)| id)
        .unwrap_or_else(|| "0-0".to_owned()))
}

/// Events after `after_id`, oldest first, waiting up to `block` for the first one (empty when
/// none came). `BLOCK` holds the connection: use a dedicated connection whose response
/// timeout is longer than `block`, never a shared multiplexed one.
pub async fn read_events<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    after_id: &str,
    block: Duration,
) -> Result<Vec<OpsEvent>, RedisError> {
    type Reply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;
    let reply: Reply = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(READ_BATCH)
        .arg("BLOCK")
        .arg(block.as_millis().max(1) as u64)
        .arg("STREAMS")
        .arg(events_key(keys))
        .arg(after_id)
        .query_async(conn)
        .await?;
    let entries = reply
        .into_iter()
        .flatten()
        .flat_map(|(_stream, entries)| entries);
    Ok(entries
        .map(|(id, fields)| {
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|pair| pair.first().is_some_and(|f| f == name))
                    .and_then(|pair| pair.get(1).cloned())
                    .unwrap_or_default()
            };
            OpsEvent {
                kind: field("kind"),
                data: field("data"),
                id,
            }
        })
        .collect())
}

/// True when `id` looks like a stream id (`{ms}` or `{ms}-{seq}`), e.g. a client's
/// `Last-Event-ID` worth resuming from.
pub fn is_stream_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    let ms_ok = parts.next().is_some_and(|ms| {
        !ms.is_empty() && ms.len() <= 20 && ms.bytes().all(|b| b.is_ascii_digit())
    });
    let seq_ok = parts.next().is_none_or(|seq| {
        !seq.is_empty() && seq.len() <= 20 && seq.bytes().all(|b| b.is_ascii_digit())
    });
    ms_ok && seq_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_recognised() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(is_stream_id("1700000000000"));
        assert!(!is_stream_id(""));
        assert!(!is_stream_id("$"));
        assert!(!is_stream_id("12-"));
        assert!(!is_stream_id("12-3-4"));
        assert!(!is_stream_id("abc-1"));
    }
}
