//! One stream entry as the consumer sees it: its fields (`id`, `a`, `p`, and on retried or
//! redriven entries `f` first failure ms and `r` redrives), decoded without trusting them.

use std::collections::HashMap;
use std::sync::Arc;

use redis::Value;
use serde::Serialize;

/// What the ack layer needs to settle a claimed entry; carried in the task's extensions.
#[derive(Debug, Clone)]
pub(crate) struct EntryMeta {
    /// Stream entry id (changes on every retry).
    pub(crate) entry_id: String,
    /// Stable job id.
    pub(crate) job_id: String,
    /// Runs before this one.
    pub(crate) runs: u32,
    /// The JSON payload as stored.
    pub(crate) payload: Arc<str>,
    /// First failure (Unix ms), 0 if none yet.
    pub(crate) first_failed_at_ms: i64,
    /// Times this job was redriven from the dead letters.
    pub(crate) redrives: u32,
}

/// An entry whose fields are missing or malformed.
#[derive(Debug, Clone)]
pub(crate) struct Malformed {
    /// Stream entry id.
    pub(crate) entry_id: String,
    /// The `id` field if present.
    pub(crate) job_id: String,
    /// The `p` field, or every field dumped, so nothing is lost.
    pub(crate) payload: String,
    /// What is wrong.
    pub(crate) reason: String,
}

fn text(map: &HashMap<String, Value>, name: &str) -> Option<String> {
    match map.get(name)? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Reads an entry's fields; `Err` carries what can be salvaged for a dead letter.
pub(crate) fn parse(entry_id: &str, map: &HashMap<String, Value>) -> Result<EntryMeta, Malformed> {
    let job_id = text(map, "id");
    let payload = text(map, "p");
    let runs = text(map, "a").and_then(|a| a.parse::<u32>().ok());
    match (job_id, payload, runs) {
        (Some(job_id), Some(payload), Some(runs)) => Ok(EntryMeta {
            entry_id: entry_id.to_owned(),
            job_id,
            runs,
            payload: payload.into(),
            first_failed_at_ms: text(map, "f").and_then(|f| f.parse().ok()).unwrap_or(0),
            redrives: text(map, "r").and_then(|r| r.parse().ok()).unwrap_or(0),
        }),
        (job_id, payload, _) => {
            let dump: HashMap<&str, String> = map
                .iter()
                .map(|(k, v)| (k.as_str(), text(map, k).unwrap_or_else(|| format!("{v:?}"))))
                .collect();
            Err(Malformed {
                entry_id: entry_id.to_owned(),
                job_id: job_id.unwrap_or_default(),
                payload: payload
                    .unwrap_or_else(|| serde_json::to_string(&dump).unwrap_or_default()),
                reason: "stream entry lacks the id, a or p field".to_owned(),
            })
        }
    }
}

/// A retry waiting in the delayed set (JSON member; `e` keeps members unique).
#[derive(Debug, Serialize)]
pub(crate) struct DelayedMember<'a> {
    pub(crate) e: &'a str,
    pub(crate) id: &'a str,
    pub(crate) a: String,
    pub(crate) p: &'a str,
    pub(crate) f: String,
    pub(crate) r: String,
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_producer_and_retry_entries() {
        let map = HashMap::from([
            ("id".to_owned(), bulk("j1")),
            ("a".to_owned(), bulk("0")),
            ("p".to_owned(), bulk("{}")),
        ]);
        let meta = parse("1-0", &map).expect("valid");
        assert_eq!(
            (meta.job_id.as_str(), meta.runs, meta.first_failed_at_ms),
            ("j1", 0, 0)
        );
        let mut map = map;
        map.insert("a".into(), bulk("2"));
        map.insert("f".into(), bulk("123"));
        map.insert("r".into(), bulk("1"));
        let meta = parse("1-0", &map).expect("valid");
        assert_eq!(
            (meta.runs, meta.first_failed_at_ms, meta.redrives),
            (2, 123, 1)
        );
    }

    #[test]
    fn malformed_keeps_what_it_has() {
        let map = HashMap::from([("x".to_owned(), bulk("y"))]);
        let bad = parse("1-0", &map).expect_err("no fields");
        assert!(bad.payload.contains("\"x\""), "{}", bad.payload);
    }
}
