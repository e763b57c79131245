//! The running knowledge worker's view of the learning stream: operators' final replies,
//! per account, as [`AnsweredBefore`] passages for later, similar questions.
//!
//! Each knowledge worker keeps its own copy, read from the stream `{prefix}:learning`: on the
//! first lookup the newest [`LearnedConfig::backfill`] records, then, at most every
//! [`LearnedConfig::refresh`] (by default on every lookup), only the entries appended since the
//! last one read, so a reply an operator approved is offered for the very next similar question. Answers are
//! kept per account, so one account's replies never reach another account's customers, and
//! at most [`LearnedConfig::max_answers`] per account (the oldest go first).
//!
//! Variables: `COPYDESK_ANSWERED_BEFORE` (`1` default, `0` off),
//! `COPYDESK_ANSWERED_BEFORE_REFRESH_MS` (0: every lookup first reads what was appended since
//! the last one, one `XRANGE` that is empty when nothing was decided), `COPYDESK_ANSWERED_BEFORE_BACKFILL` (20 000
//! records), `COPYDESK_ANSWERED_BEFORE_MAX` (5 000 answers per account).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use copydesk::config::{millis_or, parsed_or, ConfigError, EnvSource};
use copydesk::learning::{learning_key, LearningRecord};
use copydesk::queue::QueueClient;
use redis::RedisError;
use tokio::sync::Mutex;

use super::{AnsweredBefore, Passage};

/// Entries read per round trip.
const PAGE: usize = 500;

/// How the worker learns from operators.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedConfig {
    /// Off: lookups use the knowledge base only.
    pub enabled: bool,
    /// Shortest interval between two reads of the stream.
    pub refresh: Duration,
    /// Records read (newest first) when the worker starts.
    pub backfill: usize,
    /// Answers kept per account.
    pub max_answers: usize,
}

impl Default for LearnedConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            refresh: Duration::ZERO,
            backfill: 20_000,
            max_answers: 5_000,
        }
    }
}

impl LearnedConfig {
    /// Reads the `COPYDESK_ANSWERED_BEFORE*` variables (module docs).
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let d = Self::default();
        let enabled: u8 = parsed_or(env, "COPYDESK_ANSWERED_BEFORE", 1)?;
        if enabled > 1 {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_ANSWERED_BEFORE",
                value: enabled.to_string(),
                reason: "expected 1 (learn from operators' replies) or 0 (off)".into(),
            });
        }
        let max_answers = parsed_or(env, "COPYDESK_ANSWERED_BEFORE_MAX", d.max_answers)?;
        if max_answers == 0 {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_ANSWERED_BEFORE_MAX",
                value: "0".into(),
                reason: "keep at least one answer, or set COPYDESK_ANSWERED_BEFORE=0".into(),
            });
        }
        Ok(Self {
            enabled: enabled == 1,
            refresh: millis_or(env, "COPYDESK_ANSWERED_BEFORE_REFRESH_MS", d.refresh)?,
            backfill: parsed_or(env, "COPYDESK_ANSWERED_BEFORE_BACKFILL", d.backfill)?,
            max_answers,
        })
    }
}

#[derive(Debug, Default)]
struct State {
    by_account: HashMap<i64, AnsweredBefore>,
    /// The last stream entry learned; `None` before the backfill.
    last_id: Option<String>,
    refreshed_at: Option<Instant>,
}

impl State {
    fn learn(&mut self, record: &LearningRecord, max_answers: usize) {
        self.by_account
            .entry(record.account_id)
            .or_default()
            .learn_bounded(record, max_answers);
    }
}

/// Operators' earlier answers, kept up to date from the learning stream.
#[derive(Debug)]
pub struct LearnedAnswers {
    queue: QueueClient,
    config: LearnedConfig,
    state: Mutex<State>,
}

impl LearnedAnswers {
    /// A view of `queue`'s learning stream; nothing is read until the first search.
    pub fn new(queue: QueueClient, config: LearnedConfig) -> Self {
        Self {
            queue,
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// Up to `top_k` earlier answers of `account_id`'s operators to questions like `message`.
    /// The stream is read first when the last read is older than the refresh interval; when
    /// Redis fails, the answers already learned are used.
    pub async fn search(&self, account_id: i64, message: &str, top_k: usize) -> Vec<Passage> {
        if !self.config.enabled {
            return Vec::new();
        }
        let mut state = self.state.lock().await;
        let due = state
            .refreshed_at
            .is_none_or(|at| at.elapsed() >= self.config.refresh);
        if due {
            if let Err(error) = self.refresh(&mut state).await {
                tracing::warn!(%error, "learning stream unreadable; using the answers learned so far");
            }
            state.refreshed_at = Some(Instant::now());
        }
        state
            .by_account
            .get(&account_id)
            .map(|answers| answers.search(message, top_k))
            .unwrap_or_default()
    }

    async fn refresh(&self, state: &mut State) -> Result<(), RedisError> {
        let mut conn = self.queue.connection();
        let key = learning_key(self.queue.keys());
        let Some(last) = state.last_id.clone() else {
            // Backfill: the newest records, then learned oldest first (newer answers win).
            let mut entries: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
                .arg(&key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(self.config.backfill.max(1))
                .query_async(&mut conn)
                .await?;
            entries.reverse();
            state.last_id = Some(entries.last().map_or_else(|| "0-0".into(), |e| e.0.clone()));
            for (_, fields) in &entries {
                if let Some(record) = decode(fields) {
                    state.learn(&record, self.config.max_answers);
                }
            }
            return Ok(());
        };
        let mut start = format!("({last}");
        loop {
            let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
                .arg(&key)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut conn)
                .await?;
            let Some((newest, _)) = entries.last() else {
                return Ok(());
            };
            start = format!("({newest}");
            state.last_id = Some(newest.clone());
            for (_, fields) in &entries {
                if let Some(record) = decode(fields) {
                    state.learn(&record, self.config.max_answers);
                }
            }
            if entries.len() < PAGE {
                return Ok(());
            }
        }
    }
}

/// The `record` field of a learning entry; a foreign or undecodable entry teaches nothing.
fn decode(fields: &[String]) -> Option<LearningRecord> {
    let json = fields
        .chunks(2)
        .find(|pair| pair.first().is_some_and(|f| f == "record"))
        .and_then(|pair| pair.get(1))?;
    serde_json::from_str(json).ok()
}
