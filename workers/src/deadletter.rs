//! `copydesk-deadletter`: re-drives dead letters on an exponential schedule (first after
//! 1 minute, then 4, then 16 by default, with ±20 % jitter), then parks them for ops.
//! Permanent failures (4xx, undecodable payloads) are parked at once. Parked letters stay in
//! the bounded store until `copydesk dead-letters retry` or `purge`.
//!
//! Schedule variables: `COPYDESK_REDRIVE_ROUNDS` (default 3; `COPYDESK_REDRIVE_ROUNDS_<QUEUE>`
//! per queue), `COPYDESK_REDRIVE_FIRST_SECS` (60), `COPYDESK_REDRIVE_FACTOR` (4),
//! `COPYDESK_REDRIVE_TICK_MS` (how often the store is scanned, 5000).
//!
//! The same loop runs Copydesk's maintenance every `COPYDESK_RETENTION_SWEEP_MS` (60000): the
//! retention sweep (`copydesk::retention::sweep`) and the lost follow-up sweep
//! (`copydesk::operator::Operator::requeue_lost_follow_ups`, decisions older than a minute).

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use copydesk::config::{millis_or, parsed_or, secs_or, ConfigError, EnvSource};
use copydesk::domain::now_ms;
use copydesk::jobs::ALL_QUEUES;
use copydesk::queue::settings::per_queue_var;
use copydesk::queue::{DeadLetter, DeadLetterFilter, DeadLetters, QueueClient, QueueError};
use rand::Rng;
use tokio_util::sync::CancellationToken;

/// When dead letters are re-driven.
#[derive(Debug, Clone, PartialEq)]
pub struct RedriveSchedule {
    /// Automatic re-drives before a letter is parked.
    pub rounds: u32,
    /// Per-queue overrides of `rounds`.
    pub rounds_per_queue: BTreeMap<String, u32>,
    /// Delay before the first re-drive (after the last failure).
    pub first: Duration,
    /// Each later delay is this many times the previous one.
    pub factor: u32,
    /// Scan interval.
    pub tick: Duration,
    /// Interval of the retention and lost follow-up sweeps.
    pub sweep: Duration,
}

impl Default for RedriveSchedule {
    fn default() -> Self {
        Self {
            rounds: 3,
            rounds_per_queue: BTreeMap::new(),
            first: Duration::from_secs(60),
            factor: 4,
            tick: Duration::from_secs(5),
            sweep: copydesk::retention::SWEEP_INTERVAL,
        }
    }
}

impl RedriveSchedule {
    /// Reads the `COPYDESK_REDRIVE_*` variables (module docs).
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let d = Self::default();
        let mut rounds_per_queue = BTreeMap::new();
        for queue in ALL_QUEUES {
            if let Some(rounds) = per_queue_var(env, "COPYDESK_REDRIVE_ROUNDS_<QUEUE>", queue)? {
                rounds_per_queue.insert(queue.to_owned(), rounds);
            }
        }
        Ok(Self {
            rounds: parsed_or(env, "COPYDESK_REDRIVE_ROUNDS", d.rounds)?,
            rounds_per_queue,
            first: secs_or(env, "COPYDESK_REDRIVE_FIRST_SECS", d.first)?,
            factor: parsed_or(env, "COPYDESK_REDRIVE_FACTOR", d.factor)?.max(1),
            tick: millis_or(env, "COPYDESK_REDRIVE_TICK_MS", d.tick)?,
            sweep: millis_or(env, "COPYDESK_RETENTION_SWEEP_MS", d.sweep)?,
        })
    }

    /// Automatic rounds for `queue`.
    pub fn rounds_for(&self, queue: &str) -> u32 {
        self.rounds_per_queue
            .get(queue)
            .copied()
            .unwrap_or(self.rounds)
    }

    /// The delay before re-drive number `round + 1` (round = re-drives so far), unjittered:
    /// `first × factor^round`, saturating. The same backon schedule the queue's retries use;
    /// the jitter is applied by [`RedriveSchedule::verdict`], because the due time is
    /// recomputed on every scan and must not move between scans.
    pub fn delay(&self, round: u32) -> Duration {
        // After 64 steps even a factor of 2 has saturated a `Duration` of minutes.
        let step = usize::try_from(round.min(64)).unwrap_or(64);
        ExponentialBuilder::default()
            .with_min_delay(self.first)
            .with_factor(self.factor as f32)
            .without_max_delay()
            .without_max_times()
            .build()
            .nth(step)
            .unwrap_or(Duration::MAX)
    }

    /// What to do with `letter` at `now_ms`; `jitter` in `-0.2..=0.2` scales the delay.
    pub fn verdict(&self, letter: &DeadLetter, now_ms: i64, jitter: f64) -> Verdict {
        if letter.permanent || letter.redrives >= self.rounds_for(&letter.queue) {
            return Verdict::Parked;
        }
        let delay = self.delay(letter.redrives).as_millis() as f64 * (1.0 + jitter);
        let due = letter.last_failed_at_ms.saturating_add(delay as i64);
        if now_ms >= due {
            Verdict::Redrive
        } else {
            Verdict::Wait { due_ms: due }
        }
    }
}

/// A dead letter's fate on one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Put it back on its queue now.
    Redrive,
    /// Not yet.
    Wait {
        /// When it becomes due (Unix ms).
        due_ms: i64,
    },
    /// Permanent or out of rounds: waits for ops.
    Parked,
}

/// How old a decision must be before the lost follow-up sweep re-queues its job: the
/// operator's own enqueue has long finished or failed by then.
pub const FOLLOW_UP_GRACE: Duration = Duration::from_secs(60);

/// The re-drive loop.
#[derive(Debug, Clone)]
pub struct Redriver {
    letters: DeadLetters,
    schedule: RedriveSchedule,
    queue: QueueClient,
}

impl Redriver {
    /// A re-driver on `queue`'s dead-letter store.
    pub fn new(queue: QueueClient, schedule: RedriveSchedule) -> Self {
        Self {
            letters: DeadLetters::new(&queue),
            schedule,
            queue,
        }
    }

    /// One maintenance pass: the retention sweep, then the lost follow-up sweep (decisions
    /// older than [`FOLLOW_UP_GRACE`]); failures are logged and tried again next time.
    pub async fn maintain(&self) {
        match copydesk::retention::sweep(&self.queue, now_ms()).await {
            Ok(report) => {
                if report != copydesk::retention::SweepReport::default() {
                    tracing::info!(
                        approvals = report.approvals,
                        learning = report.learning,
                        events = report.events,
                        "retention sweep forgot what was past retention"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "retention sweep failed"),
        }
        let operator = copydesk::operator::Operator::new(self.queue.clone());
        if let Err(error) = operator.requeue_lost_follow_ups(FOLLOW_UP_GRACE).await {
            tracing::warn!(%error, "lost follow-up sweep failed");
        }
    }

    /// One scan: re-drives what is due; returns how many.
    pub async fn tick(&self) -> Result<usize, QueueError> {
        let all = self
            .letters
            .list(&DeadLetterFilter {
                limit: Some(10_000),
                ..DeadLetterFilter::default()
            })
            .await?;
        let now = now_ms();
        let mut redriven = 0;
        for letter in all {
            let jitter = rand::rng().random_range(-0.2..=0.2);
            if self.schedule.verdict(&letter, now, jitter) == Verdict::Redrive {
                match self.letters.retry(&letter.id).await {
                    Ok(()) => {
                        redriven += 1;
                        tracing::info!(id = %letter.id, queue = %letter.queue,
                            round = letter.redrives + 1, "dead letter re-driven");
                    }
                    Err(QueueError::NotFound(_)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(redriven)
    }

    /// Scans every `schedule.tick` until `shutdown` fires.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_sweep: Option<tokio::time::Instant> = None;
        loop {
            if let Err(error) = self.tick().await {
                tracing::warn!(%error, "dead-letter scan failed; trying again next tick");
            }
            if last_sweep.is_none_or(|at| at.elapsed() >= self.schedule.sweep) {
                self.maintain().await;
                last_sweep = Some(tokio::time::Instant::now());
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.schedule.tick) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(redrives: u32, permanent: bool) -> DeadLetter {
        DeadLetter {
            id: "x".into(),
            queue: "post_note".into(),
            job_id: "j".into(),
            payload: "{}".into(),
            error: "boom".into(),
            attempts: 5,
            permanent,
            first_failed_at_ms: 0,
            last_failed_at_ms: 1_000_000,
            redrives,
        }
    }

    #[test]
    fn delays_grow_exponentially_from_one_minute() {
        let s = RedriveSchedule::default();
        assert_eq!(s.delay(0), Duration::from_secs(60));
        assert_eq!(s.delay(1), Duration::from_secs(240));
        assert_eq!(s.delay(2), Duration::from_secs(960));
    }

    #[test]
    fn huge_rounds_saturate_instead_of_overflowing() {
        let s = RedriveSchedule {
            rounds: u32::MAX,
            ..RedriveSchedule::default()
        };
        assert!(s.delay(40) >= s.delay(39));
        assert_eq!(s.delay(u32::MAX), s.delay(64));
        assert!(matches!(
            s.verdict(&letter(u32::MAX - 1, false), 0, 0.2),
            Verdict::Wait { .. }
        ));
    }

    #[test]
    fn a_letter_waits_then_is_redriven_then_parked_after_the_rounds() {
        let s = RedriveSchedule::default();
        assert_eq!(
            s.verdict(&letter(0, false), 1_000_000 + 59_000, 0.0),
            Verdict::Wait { due_ms: 1_060_000 }
        );
        assert_eq!(
            s.verdict(&letter(0, false), 1_060_000, 0.0),
            Verdict::Redrive
        );
        assert_eq!(s.verdict(&letter(3, false), i64::MAX, 0.0), Verdict::Parked);
    }

    #[test]
    fn permanent_failures_are_parked_at_once() {
        let s = RedriveSchedule::default();
        assert_eq!(s.verdict(&letter(0, true), i64::MAX, 0.0), Verdict::Parked);
    }

    #[test]
    fn per_queue_rounds_override_the_default() {
        let mut env = std::collections::HashMap::new();
        env.insert(
            "COPYDESK_REDRIVE_ROUNDS_POST_NOTE".to_owned(),
            "1".to_owned(),
        );
        let s = RedriveSchedule::from_env(&env).expect("valid");
        assert_eq!(s.rounds_for("post_note"), 1);
        assert_eq!(s.rounds_for("send_reply"), 3);
        assert_eq!(s.verdict(&letter(1, false), i64::MAX, 0.0), Verdict::Parked);
    }
}
