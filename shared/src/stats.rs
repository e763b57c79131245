//! Numbers for the operator console's stats page (`/ui/stats`), computed from what Copydesk
//! already stores, with bounded reads:
//!
//! - drafts: `approvals:all` (scored by creation time): `ZCOUNT` per window and per day;
//! - decisions: the learning stream (one record per decision, entry id = decision time),
//!   read newest first, at most `cap` records ([`read_decisions`]); the time from draft to
//!   decision is the record's decision time minus the item's creation time (its score in
//!   `approvals:all`);
//! - first response (FRT), resolution (TTR) and SLA breaches: the stream `stats:lifecycle`,
//!   which the lifecycle worker appends to ([`record_lifecycle`]) for every
//!   `FirstResponse` / `Resolved` / `SlaBreach` effect; bounded to
//!   [`MAX_LIFECYCLE_SAMPLES`] entries (`MAXLEN ~`), trimmed to [`LIFECYCLE_RETENTION_MS`]
//!   (`MINID ~`) and expiring after as long without writes.
//!
//! [`aggregate`] turns samples into [`WindowStats`]: counts, rates, medians (pure, tested).

use std::collections::HashMap;

use redis::aio::ConnectionLike;
use redis::RedisError;
use serde::{Deserialize, Serialize};

use crate::approvals::{Action, Priority};
use crate::learning::LearningRecord;
use crate::queue::Keys;

/// Most lifecycle samples kept (≈ 100 B each).
pub const MAX_LIFECYCLE_SAMPLES: usize = 200_000;
/// How long lifecycle samples are kept: 8 days (the page's longest window is 7).
pub const LIFECYCLE_RETENTION_MS: i64 = 8 * 24 * 3600 * 1000;

/// Every priority, most urgent first.
pub const PRIORITIES: [Priority; 4] = [
    Priority::Urgent,
    Priority::High,
    Priority::Normal,
    Priority::Low,
];
/// Every recommended action.
pub const ACTIONS: [Action; 3] = [Action::Send, Action::Review, Action::Escalate];

/// What one lifecycle sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// First customer message of an episode → first public reply.
    FirstResponse,
    /// First customer message of an episode → resolved.
    Resolution,
    /// The first response target was missed.
    FirstResponseBreach,
    /// The resolution target was missed.
    ResolutionBreach,
}

impl SampleKind {
    /// Stable name (the stream's `kind` field).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstResponse => "first_response",
            Self::Resolution => "resolution",
            Self::FirstResponseBreach => "first_response_breach",
            Self::ResolutionBreach => "resolution_breach",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::FirstResponse,
            Self::Resolution,
            Self::FirstResponseBreach,
            Self::ResolutionBreach,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One lifecycle measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifecycleSample {
    /// What it measures.
    pub kind: SampleKind,
    /// The conversation's priority then.
    pub priority: Priority,
    /// The duration (0 for breaches).
    pub seconds: f64,
    /// When it happened (Unix ms; the stream entry's time when read back).
    pub at_ms: i64,
}

/// Appends lifecycle samples (one `XADD` each, `MAXLEN ~`), trims entries older than
/// [`LIFECYCLE_RETENTION_MS`] and renews the key's expiry, in one round trip.
pub async fn record_lifecycle<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    samples: &[LifecycleSample],
    now_ms: i64,
) -> Result<(), RedisError> {
    if samples.is_empty() {
        return Ok(());
    }
    let key = keys.stats_lifecycle();
    let mut pipe = redis::pipe();
    for sample in samples {
        pipe.cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(MAX_LIFECYCLE_SAMPLES)
            .arg("*")
            .arg("kind")
            .arg(sample.kind.as_str())
            .arg("priority")
            .arg(sample.priority.as_str())
            .arg("seconds")
            .arg(format!("{:.3}", sample.seconds.max(0.0)))
            .ignore();
    }
    pipe.cmd("XTRIM")
        .arg(&key)
        .arg("MINID")
        .arg("~")
        .arg((now_ms - LIFECYCLE_RETENTION_MS).max(0))
        .ignore()
        .cmd("PEXPIRE")
        .arg(&key)
        .arg(LIFECYCLE_RETENTION_MS)
        .ignore();
    pipe.query_async(conn).await
}

/// The stream entry id's time part (Unix ms).
fn entry_ms(id: &str) -> i64 {
    id.split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0)
}

/// A stream's entries at or after `since_ms`, newest first, at most `cap` (at least one); the
/// flag says the cap was hit.
async fn newest_entries<C: ConnectionLike>(
    conn: &mut C,
    key: &str,
    since_ms: i64,
    cap: usize,
) -> Result<(Vec<(String, HashMap<String, String>)>, bool), RedisError> {
    let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg(since_ms.max(0))
        .arg("COUNT")
        .arg(cap.max(1))
        .query_async(conn)
        .await?;
    let capped = entries.len() >= cap.max(1);
    Ok((entries, capped))
}

/// Lifecycle samples at or after `since_ms`, newest first, at most `cap`; the flag says the
/// cap was hit (older samples of the window were not read).
pub async fn read_lifecycle<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    since_ms: i64,
    cap: usize,
) -> Result<(Vec<LifecycleSample>, bool), RedisError> {
    let (entries, capped) = newest_entries(conn, &keys.stats_lifecycle(), since_ms, cap).await?;
    let samples = entries
        .into_iter()
        .filter_map(|(id, fields)| {
            Some(LifecycleSample {
                kind: SampleKind::parse(fields.get("kind")?)?,
                priority: fields.get("priority")?.parse().ok()?,
                seconds: fields.get("seconds")?.parse().ok()?,
                at_ms: entry_ms(&id),
            })
        })
        .collect();
    Ok((samples, capped))
}

/// An operator decision, as the stats need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// Approved as drafted.
    Approve,
    /// Sent with edits.
    Edit,
    /// Rejected.
    Reject,
    /// Escalated to a team.
    Escalate,
}

impl DecisionKind {
    /// Every kind, in the page's order.
    pub const ALL: [Self; 4] = [Self::Approve, Self::Edit, Self::Reject, Self::Escalate];

    /// The learning record's label (`approve`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Edit => "edit",
            Self::Reject => "reject",
            Self::Escalate => "escalate",
        }
    }

    /// Parses a learning record's label.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether deciding this follows the drafter's recommended `action`: `send` is followed
    /// by approving unchanged, `review` by sending the draft (approved or edited),
    /// `escalate` by escalating.
    pub fn follows(self, action: Action) -> bool {
        matches!(
            (action, self),
            (Action::Send, Self::Approve)
                | (Action::Review, Self::Approve | Self::Edit)
                | (Action::Escalate, Self::Escalate)
        )
    }
}

/// One decision sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionSample {
    /// What was decided.
    pub kind: DecisionKind,
    /// What the drafter recommended.
    pub recommended: Action,
    /// The draft's priority.
    pub priority: Priority,
    /// Char edit distance draft → sent text (edits only).
    pub edit_distance: Option<usize>,
    /// When the decision was made (Unix ms).
    pub decided_at_ms: i64,
    /// Draft stored → decision (ms), when the item's creation time is known.
    pub draft_to_decision_ms: Option<i64>,
}

fn action_of(s: &str) -> Option<Action> {
    ACTIONS.into_iter().find(|a| a.as_str() == s)
}

/// Decisions made at or after `since_ms`, newest first, at most `cap` (the flag says the cap
/// was hit), from the learning stream, with each draft's creation time from
/// `approvals:all` (one pipelined round trip).
pub async fn read_decisions<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    since_ms: i64,
    cap: usize,
) -> Result<(Vec<DecisionSample>, bool), RedisError> {
    let (entries, capped) = newest_entries(conn, &keys.learning(), since_ms, cap).await?;
    let records: Vec<LearningRecord> = entries
        .into_iter()
        .filter_map(|(_, fields)| serde_json::from_str(fields.get("record")?).ok())
        .collect();
    let created: Vec<Option<f64>> = if records.is_empty() {
        Vec::new()
    } else {
        let mut pipe = redis::pipe();
        for record in &records {
            pipe.zscore(keys.approvals_all(), &record.approval_id);
        }
        pipe.query_async(conn).await?
    };
    let samples = records
        .iter()
        .zip(created)
        .filter_map(|(record, created)| {
            let kind = DecisionKind::parse(&record.decision)?;
            Some(DecisionSample {
                kind,
                recommended: action_of(&record.recommended_action)?,
                priority: record.priority.parse().unwrap_or(Priority::Normal),
                edit_distance: (kind == DecisionKind::Edit)
                    .then_some(record.edit_distance)
                    .flatten(),
                decided_at_ms: record.decided_at_ms,
                draft_to_decision_ms: created.map(|c| (record.decided_at_ms - c as i64).max(0)),
            })
        })
        .collect();
    Ok((samples, capped))
}

/// Drafts stored per day: `days` counts of the 24-hour spans ending at `now_ms`, oldest
/// first (the last one is the last 24 h; their sum the last `days` days).
pub async fn count_drafts<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    now_ms: i64,
    days: usize,
) -> Result<Vec<u64>, RedisError> {
    const DAY: i64 = 24 * 3600 * 1000;
    let mut pipe = redis::pipe();
    for day in (0..days as i64).rev() {
        let end = now_ms - day * DAY;
        pipe.zcount(keys.approvals_all(), format!("({}", end - DAY), end);
    }
    pipe.query_async(conn).await
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// `part / whole` in 0..=1; `None` when `whole` is 0.
pub fn rate(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Count and median duration of one kind of sample, for one priority.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Durations {
    /// Samples.
    pub count: usize,
    /// Median seconds.
    pub median_secs: Option<f64>,
}

/// One window's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowStats {
    /// The window's length (ms).
    pub window_ms: i64,
    /// Drafts stored in the window.
    pub drafts: u64,
    /// Decisions made in the window.
    pub decisions: usize,
    /// Decisions per kind, in [`DecisionKind::ALL`] order.
    pub by_kind: [usize; 4],
    /// Median draft → decision (ms).
    pub median_decision_ms: Option<f64>,
    /// Median char edit distance of edited replies.
    pub median_edit_distance: Option<f64>,
    /// Per recommended action ([`ACTIONS`] order): (decisions following it, decisions).
    pub followed: [(usize, usize); 3],
    /// First response per priority ([`PRIORITIES`] order).
    pub frt: [Durations; 4],
    /// Resolution per priority.
    pub ttr: [Durations; 4],
    /// SLA breaches per priority: (first response, resolution).
    pub breaches: [(usize, usize); 4],
}

impl WindowStats {
    /// The share of decisions of `kind`.
    pub fn rate_of(&self, kind: DecisionKind) -> Option<f64> {
        let at = DecisionKind::ALL.iter().position(|k| *k == kind)?;
        rate(self.by_kind[at], self.decisions)
    }

    /// Total SLA breaches.
    pub fn breaches_total(&self) -> usize {
        self.breaches.iter().map(|(f, r)| f + r).sum()
    }
}

fn priority_index(p: Priority) -> usize {
    PRIORITIES.iter().position(|x| *x == p).unwrap_or(2)
}

/// The numbers of the window `[now_ms − window_ms, now_ms]` from samples (which may span
/// more: those outside the window are ignored).
pub fn aggregate(
    window_ms: i64,
    now_ms: i64,
    drafts: u64,
    decisions: &[DecisionSample],
    lifecycle: &[LifecycleSample],
) -> WindowStats {
    let since = now_ms - window_ms;
    let decisions: Vec<&DecisionSample> = decisions
        .iter()
        .filter(|d| d.decided_at_ms >= since && d.decided_at_ms <= now_ms)
        .collect();
    let mut by_kind = [0usize; 4];
    let mut followed = [(0usize, 0usize); 3];
    let mut waits = Vec::new();
    let mut edits = Vec::new();
    for d in &decisions {
        if let Some(at) = DecisionKind::ALL.iter().position(|k| *k == d.kind) {
            by_kind[at] += 1;
        }
        if let Some(at) = ACTIONS.iter().position(|a| *a == d.recommended) {
            followed[at].1 += 1;
            if d.kind.follows(d.recommended) {
                followed[at].0 += 1;
            }
        }
        if let Some(ms) = d.draft_to_decision_ms {
            waits.push(ms as f64);
        }
        if let Some(distance) = d.edit_distance {
            edits.push(distance as f64);
        }
    }
    let mut frt: [Vec<f64>; 4] = Default::default();
    let mut ttr: [Vec<f64>; 4] = Default::default();
    let mut breaches = [(0usize, 0usize); 4];
    for s in lifecycle
        .iter()
        .filter(|s| s.at_ms >= since && s.at_ms <= now_ms)
    {
        let at = priority_index(s.priority);
        match s.kind {
            SampleKind::FirstResponse => frt[at].push(s.seconds),
            SampleKind::Resolution => ttr[at].push(s.seconds),
            SampleKind::FirstResponseBreach => breaches[at].0 += 1,
            SampleKind::ResolutionBreach => breaches[at].1 += 1,
        }
    }
    let durations = |values: &mut [Vec<f64>; 4]| {
        let mut out = [Durations::default(); 4];
        for (slot, v) in out.iter_mut().zip(values.iter_mut()) {
            *slot = Durations {
                count: v.len(),
                median_secs: median(v),
            };
        }
        out
    };
    WindowStats {
        window_ms,
        drafts,
        decisions: decisions.len(),
        by_kind,
        median_decision_ms: median(&mut waits),
        median_edit_distance: median(&mut edits),
        followed,
        frt: durations(&mut frt),
        ttr: durations(&mut ttr),
        breaches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(kind: DecisionKind, recommended: Action, at: i64) -> DecisionSample {
        DecisionSample {
            kind,
            recommended,
            priority: Priority::Normal,
            edit_distance: None,
            decided_at_ms: at,
            draft_to_decision_ms: Some(1_000),
        }
    }

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5.0]), Some(5.0));
        assert_eq!(median(&mut [9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn rates_need_a_whole() {
        assert_eq!(rate(1, 0), None);
        assert_eq!(rate(1, 4), Some(0.25));
        assert_eq!(rate(0, 3), Some(0.0));
    }

    #[test]
    fn following_a_recommendation() {
        assert!(DecisionKind::Approve.follows(Action::Send));
        assert!(!DecisionKind::Edit.follows(Action::Send));
        assert!(DecisionKind::Edit.follows(Action::Review));
        assert!(DecisionKind::Approve.follows(Action::Review));
        assert!(!DecisionKind::Reject.follows(Action::Review));
        assert!(DecisionKind::Escalate.follows(Action::Escalate));
        assert!(!DecisionKind::Approve.follows(Action::Escalate));
    }

    #[test]
    fn a_window_counts_rates_medians_and_ignores_older_samples() {
        let now = 10_000_000;
        let mut edited = decision(DecisionKind::Edit, Action::Review, now - 10);
        edited.edit_distance = Some(12);
        edited.draft_to_decision_ms = Some(4_000);
        let mut edited2 = decision(DecisionKind::Edit, Action::Send, now - 20);
        edited2.edit_distance = Some(4);
        edited2.draft_to_decision_ms = Some(2_000);
        let decisions = vec![
            decision(DecisionKind::Approve, Action::Send, now - 1),
            edited,
            edited2,
            decision(DecisionKind::Reject, Action::Review, now - 30),
            decision(DecisionKind::Escalate, Action::Escalate, now - 40),
            // Outside the window.
            decision(DecisionKind::Approve, Action::Send, now - 5_000),
        ];
        let lifecycle = vec![
            LifecycleSample {
                kind: SampleKind::FirstResponse,
                priority: Priority::Urgent,
                seconds: 30.0,
                at_ms: now - 5,
            },
            LifecycleSample {
                kind: SampleKind::FirstResponse,
                priority: Priority::Urgent,
                seconds: 90.0,
                at_ms: now - 6,
            },
            LifecycleSample {
                kind: SampleKind::Resolution,
                priority: Priority::Low,
                seconds: 600.0,
                at_ms: now - 7,
            },
            LifecycleSample {
                kind: SampleKind::FirstResponseBreach,
                priority: Priority::High,
                seconds: 0.0,
                at_ms: now - 8,
            },
            LifecycleSample {
                kind: SampleKind::ResolutionBreach,
                priority: Priority::High,
                seconds: 0.0,
                at_ms: now - 9_000,
            },
        ];
        let stats = aggregate(1_000, now, 7, &decisions, &lifecycle);
        assert_eq!(stats.drafts, 7);
        assert_eq!(stats.decisions, 5);
        assert_eq!(stats.by_kind, [1, 2, 1, 1]);
        assert_eq!(stats.rate_of(DecisionKind::Edit), Some(0.4));
        assert_eq!(stats.rate_of(DecisionKind::Approve), Some(0.2));
        // Waits: 1000, 4000, 2000, 1000, 1000 → 1000.
        assert_eq!(stats.median_decision_ms, Some(1_000.0));
        assert_eq!(stats.median_edit_distance, Some(8.0));
        // send: approve (followed), edit (not); review: edit (followed), reject (not).
        assert_eq!(stats.followed, [(1, 2), (1, 2), (1, 1)]);
        assert_eq!(stats.frt[0].count, 2);
        assert_eq!(stats.frt[0].median_secs, Some(60.0));
        assert_eq!(stats.ttr[3].median_secs, Some(600.0));
        assert_eq!(stats.ttr[0].median_secs, None);
        assert_eq!(stats.breaches[1], (1, 0));
        assert_eq!(stats.breaches_total(), 1);
    }

    #[test]
    fn an_empty_window_has_no_rates() {
        let stats = aggregate(1_000, 5_000, 0, &[], &[]);
        assert_eq!(stats.decisions, 0);
        assert_eq!(stats.rate_of(DecisionKind::Approve), None);
        assert_eq!(stats.median_decision_ms, None);
        assert_eq!(stats.followed, [(0, 0); 3]);
    }

    #[test]
    fn entry_ids_carry_their_time() {
        assert_eq!(entry_ms("1700000000123-4"), 1_700_000_000_123);
        assert_eq!(entry_ms("junk"), 0);
    }
}
