//! What the operator console shows next to an approval item that the immutable draft
//! ([`crate::approvals::DraftDoc`]) does not hold:
//!
//! - the **team** routing chose for the drafted conversation: the assigner records it with
//!   [`record_team`] as field `team` of the item's hash (`approval:{id}`), only while the item
//!   exists; [`teams`] reads it for many items in one round trip;
//! - the **evidence** the drafter worked from ([`DraftEvidence`]: the recent conversation
//!   lines it got, the passages with their text, and the inputs of the confidence), stored
//!   by the drafter with [`store_evidence`] under `approval-evidence:{id}` (JSON, bounded by
//!   [`MAX_CONTEXT_LINES`] × [`MAX_LINE_CHARS`] and [`MAX_PASSAGES`] × [`MAX_PASSAGE_CHARS`],
//!   kept [`EVIDENCE_TTL_SECS`]). It is written *before* the item, so a drafter that crashes
//!   in between leaves nothing missing on the retry.
//!
//! Both are best effort for display: an item without them shows "—" or "not recorded".

use redis::aio::ConnectionLike;
use redis::RedisError;
use serde::{Deserialize, Serialize};

use crate::queue::Keys;

/// Longest team name recorded (routing-file names are short; this only bounds bad input).
pub const MAX_TEAM_CHARS: usize = 100;
/// Most conversation lines kept with a draft (the newest ones).
pub const MAX_CONTEXT_LINES: usize = 10;
/// Most characters kept of one conversation line.
pub const MAX_LINE_CHARS: usize = 1_000;
/// Most passages kept with a draft.
pub const MAX_PASSAGES: usize = 8;
/// Most characters kept of one passage's text.
pub const MAX_PASSAGE_CHARS: usize = 2_000;
/// How long the evidence is kept: 30 days (decided drafts need it less and less).
pub const EVIDENCE_TTL_SECS: u64 = 30 * 24 * 3600;

/// One earlier message of the conversation, as the drafter got it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceLine {
    /// True when the customer wrote it.
    pub from_customer: bool,
    /// The text (at most [`MAX_LINE_CHARS`]).
    pub text: String,
    /// True when the text was cut.
    #[serde(default)]
    pub cut: bool,
}

/// One knowledge passage the drafter was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidencePassage {
    /// Where it came from.
    pub source: String,
    /// Its title.
    pub title: String,
    /// Its text (at most [`MAX_PASSAGE_CHARS`]).
    pub text: String,
    /// True when the text was cut.
    #[serde(default)]
    pub cut: bool,
    /// Retrieval relevance, 0..=1.
    pub relevance: f32,
    /// True when the draft relies on it (it is one of the draft's sources).
    pub used: bool,
}

/// What a draft's confidence came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceBasis {
    /// Best retrieval relevance among the passages the draft uses, 0..=1.
    pub retrieval: f32,
    /// Share of the question's terms those passages contain, 0..=1.
    pub coverage: f32,
    /// The knowledge lookup failed (confidence halved).
    pub degraded: bool,
    /// The knowledge used refers the question elsewhere (confidence lowered).
    pub out_of_scope: bool,
    /// Safety words found in the customer's words.
    pub safety_words: Vec<String>,
}

/// What the drafter saw and how it judged it, for the draft page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftEvidence {
    /// The conversation's recent messages before the answered one, oldest first.
    pub context: Vec<EvidenceLine>,
    /// Lines of the conversation left out (older than the newest [`MAX_CONTEXT_LINES`]).
    #[serde(default)]
    pub context_omitted: usize,
    /// The passages retrieved, best first.
    pub passages: Vec<EvidencePassage>,
    /// The confidence's inputs.
    pub basis: ConfidenceBasis,
}

/// The first `max` characters of `text` and whether it was cut.
fn clip(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((at, _)) => (text[..at].to_owned(), true),
        None => (text.to_owned(), false),
    }
}

impl DraftEvidence {
    /// Evidence from `(from_customer, text)` lines (oldest first) and `(source, title, text,
    /// relevance, used)` passages, cut to the bounds of this module.
    pub fn bounded<'a>(
        context: impl IntoIterator<Item = (bool, &'a str)>,
        passages: impl IntoIterator<Item = (&'a str, &'a str, &'a str, f32, bool)>,
        basis: ConfidenceBasis,
    ) -> Self {
        let lines: Vec<(bool, &str)> = context.into_iter().collect();
        let skip = lines.len().saturating_sub(MAX_CONTEXT_LINES);
        let context = lines[skip..]
            .iter()
            .map(|(from_customer, text)| {
                let (text, cut) = clip(text, MAX_LINE_CHARS);
                EvidenceLine {
                    from_customer: *from_customer,
                    text,
                    cut,
                }
            })
            .collect();
        let passages = passages
            .into_iter()
            .take(MAX_PASSAGES)
            .map(|(source, title, text, relevance, used)| {
                let (text, cut) = clip(text, MAX_PASSAGE_CHARS);
                EvidencePassage {
                    source: clip(source, MAX_LINE_CHARS).0,
                    title: clip(title, MAX_LINE_CHARS).0,
                    text,
                    cut,
                    relevance,
                    used,
                }
            })
            .collect();
        let mut basis = basis;
        basis.safety_words.truncate(MAX_PASSAGES * 4);
        Self {
            context,
            context_omitted: skip,
            passages,
            basis,
        }
    }
}

fn encode_error(e: serde_json::Error) -> RedisError {
    RedisError::from((
        redis::ErrorKind::Client,
        "approval evidence does not encode",
        e.to_string(),
    ))
}

/// Stores the evidence of approval `id` (overwrites: a retried drafter writes the same).
pub async fn store_evidence<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    id: &str,
    evidence: &DraftEvidence,
) -> Result<(), RedisError> {
    let json = serde_json::to_string(evidence).map_err(encode_error)?;
    redis::cmd("SET")
        .arg(keys.approval_evidence(id))
        .arg(json)
        .arg("EX")
        .arg(EVIDENCE_TTL_SECS)
        .query_async(conn)
        .await
}

/// The evidence of approval `id`, if it was stored (and still is); one that does not
/// decode (a foreign write) reads as none, with a warning.
pub async fn evidence<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    id: &str,
) -> Result<Option<DraftEvidence>, RedisError> {
    let json: Option<String> = redis::cmd("GET")
        .arg(keys.approval_evidence(id))
        .query_async(conn)
        .await?;
    Ok(json.and_then(|j| match serde_json::from_str(&j) {
        Ok(evidence) => Some(evidence),
        Err(error) => {
            tracing::warn!(approval = %id, %error, "approval evidence does not decode");
            None
        }
    }))
}

/// Records the team routing chose for approval `id` (field `team` of its hash), if the item
/// exists; returns whether it did. The name is cut to [`MAX_TEAM_CHARS`].
pub async fn record_team<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    id: &str,
    team: &str,
) -> Result<bool, RedisError> {
    const SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'team', ARGV[1])
return 1
"#;
    let team = clip(team.trim(), MAX_TEAM_CHARS).0;
    let done: i64 = redis::Script::new(SCRIPT)
        .key(keys.approval(id))
        .arg(team)
        .invoke_async(conn)
        .await?;
    Ok(done == 1)
}

/// The recorded team of each of `ids` (`None`: not routed yet, or routing named no team),
/// in one round trip.
pub async fn teams<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    ids: &[String],
) -> Result<Vec<Option<String>>, RedisError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.hget(keys.approval(id), "team");
    }
    let teams: Vec<Option<String>> = pipe.query_async(conn).await?;
    Ok(teams
        .into_iter()
        .map(|t| t.filter(|t| !t.is_empty()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basis() -> ConfidenceBasis {
        ConfidenceBasis {
            retrieval: 0.8,
            coverage: 0.5,
            degraded: false,
            out_of_scope: false,
            safety_words: vec!["leak".into()],
        }
    }

    #[test]
    fn evidence_keeps_the_newest_lines_and_cuts_long_texts() {
        let long = "é".repeat(MAX_LINE_CHARS + 5);
        let lines: Vec<(bool, String)> = (0..MAX_CONTEXT_LINES + 3)
            .map(|n| (n % 2 == 0, format!("line {n}")))
            .chain(std::iter::once((true, long.clone())))
            .collect();
        let passage_text = "p".repeat(MAX_PASSAGE_CHARS * 2);
        let passages: Vec<(String, String, String, f32, bool)> = (0..MAX_PASSAGES + 2)
            .map(|n| {
                (
                    format!("s{n}.md"),
                    format!("T{n}"),
                    passage_text.clone(),
                    0.5,
                    n == 0,
                )
            })
            .collect();
        let evidence = DraftEvidence::bounded(
            lines.iter().map(|(c, t)| (*c, t.as_str())),
            passages
                .iter()
                .map(|(s, t, x, r, u)| (s.as_str(), t.as_str(), x.as_str(), *r, *u)),
            basis(),
        );
        assert_eq!(evidence.context.len(), MAX_CONTEXT_LINES);
        assert_eq!(evidence.context_omitted, 4);
        assert_eq!(evidence.context[0].text, "line 4");
        let last = evidence.context.last().expect("a line");
        assert!(last.cut);
        assert_eq!(last.text.chars().count(), MAX_LINE_CHARS);
        assert_eq!(evidence.passages.len(), MAX_PASSAGES);
        assert!(evidence.passages[0].used && !evidence.passages[1].used);
        assert!(evidence.passages[0].cut);
        assert_eq!(evidence.passages[0].text.len(), MAX_PASSAGE_CHARS);
        let json = serde_json::to_string(&evidence).expect("encodes");
        let back: DraftEvidence = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, evidence);
    }

    #[test]
    fn short_texts_are_kept_whole() {
        assert_eq!(clip("abc", 3), ("abc".to_owned(), false));
        assert_eq!(clip("abcd", 3), ("abc".to_owned(), true));
        assert_eq!(clip("", 3), (String::new(), false));
    }
}
