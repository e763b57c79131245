//! Tunables of the consumer side: visibility timeout, BLOCK, slots, attempts, backoff, dead
//! letter bounds. Read once from `COPYDESK_*` variables; every one has a default.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `COPYDESK_VISIBILITY_TIMEOUT_MS` | 30000 | idle time after which another worker takes a claimed job (`XAUTOCLAIM` min-idle) |
//! | `COPYDESK_CLAIM_BLOCK_MS` | 1000 | `XREADGROUP BLOCK`; clamped to the reclaim interval |
//! | `COPYDESK_RECLAIM_INTERVAL_MS` | 1000 | how often an idle worker looks for orphans |
//! | `COPYDESK_MAX_IN_FLIGHT` | 16 | jobs claimed and running per worker (the concurrency) |
//! | `COPYDESK_MAX_ATTEMPTS` | 5 | runs before a failing job is dead-lettered |
//! | `COPYDESK_MAX_ATTEMPTS_<QUEUE>` | – | per-queue override, e.g. `COPYDESK_MAX_ATTEMPTS_POST_NOTE` |
//! | `COPYDESK_MAX_DELIVERIES` | 5 | crash redeliveries (stream delivery count) before dead-lettering |
//! | `COPYDESK_BACKOFF_BASE_MS` | 1000 | first retry delay (exponential, doubled, with jitter) |
//! | `COPYDESK_BACKOFF_MAX_MS` | 300000 | retry delay cap |
//! | `COPYDESK_DEAD_LETTER_MAX` | 10000 | dead letters kept |
//! | `COPYDESK_DEAD_LETTER_MAX_AGE_SECS` | 2592000 | dead letters older than this are trimmed (30 days) |
//! | `COPYDESK_MAINTENANCE_INTERVAL_MS` | 250 | delayed-job promotion tick |
//! | `COPYDESK_CONSUMER_IDLE_SECS` | 3600 | idle consumers with nothing pending are removed after this |
//! | `COPYDESK_SHUTDOWN_DEADLINE_MS` | 25000 | time in-flight jobs get to finish on shutdown |
//! | `COPYDESK_JOB_DEADLINE_MS` | 120000 | longest one attempt may run; then it is a failed, retryable attempt |
//! | `COPYDESK_JOB_DEADLINE_MS_<QUEUE>` | – | per-queue override, e.g. `COPYDESK_JOB_DEADLINE_MS_GENERATE_DRAFT` |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::BackoffBuilder;

use crate::config::{millis_or, parsed_or, secs_or, ConfigError, EnvSource};

/// Margin added to BLOCK for the claim connection's response timeout.
pub const CLAIM_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// How the consumer side of a queue behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    /// A claimed job idle this long is taken by another worker (`XAUTOCLAIM` min-idle).
    pub visibility_timeout: Duration,
    /// How long one `XREADGROUP` waits for new entries.
    pub block: Duration,
    /// How often a worker runs `XAUTOCLAIM` for orphans.
    pub reclaim_interval: Duration,
    /// Jobs claimed (buffered or running) at most, per worker.
    pub max_in_flight: usize,
    /// Runs of a failing job before it is dead-lettered.
    pub max_attempts: u32,
    /// What single queues set differently (their job kind's defaults, then
    /// `COPYDESK_<SETTING>_<QUEUE>` variables), by queue name.
    pub per_queue: BTreeMap<String, PerQueue>,
    /// Deliveries of one stream entry (crashes while running it) before it is dead-lettered.
    pub max_deliveries: u32,
    /// First retry delay.
    pub backoff_base: Duration,
    /// Largest retry delay.
    pub backoff_max: Duration,
    /// Dead letters kept (oldest trimmed first).
    pub dead_letter_max: usize,
    /// Dead letters older than this are trimmed.
    pub dead_letter_max_age: Duration,
    /// Bytes of dead-letter records kept (oldest trimmed first), so a flood of big payloads
    /// cannot fill Redis before the count bound is reached.
    pub dead_letter_max_bytes: u64,
    /// Tick of the maintenance task (delayed-job promotion).
    pub maintenance_interval: Duration,
    /// Consumers idle this long with nothing pending are deleted from the group.
    pub consumer_idle_limit: Duration,
    /// Time in-flight jobs get to finish on shutdown before the worker is dropped (their
    /// entries are then reclaimed by other workers after the visibility timeout).
    pub shutdown_deadline: Duration,
    /// Consumer name; `None` makes a fresh `{host}-{pid}-{n}` per backend.
    pub consumer_name: Option<String>,
    /// Longest one attempt may run before it is stopped and counted as a failed, retryable
    /// attempt (per-queue overrides in [`PerQueue::job_deadline`]).
    pub job_deadline: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            block: Duration::from_secs(1),
            reclaim_interval: Duration::from_secs(1),
            max_in_flight: 16,
            max_attempts: 5,
            per_queue: BTreeMap::new(),
            max_deliveries: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            dead_letter_max: 10_000,
            dead_letter_max_age: Duration::from_secs(30 * 24 * 3600),
            dead_letter_max_bytes: 64 * 1024 * 1024,
            maintenance_interval: Duration::from_millis(250),
            consumer_idle_limit: Duration::from_secs(3600),
            shutdown_deadline: Duration::from_secs(25),
            consumer_name: None,
            job_deadline: Duration::from_secs(120),
        }
    }
}

impl QueueSettings {
    /// Reads the `COPYDESK_*` variables in the module table for every queue of
    /// [`crate::jobs::ALL_QUEUES`]; unset ones take the default.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let defaults = crate::jobs::ALL_QUEUES.map(|queue| (queue, PerQueue::default()));
        Self::from_env_with(env, defaults)
    }

    /// Like [`Self::from_env`], starting each queue from its job kind's `defaults` (the
    /// per-queue variables override them).
    pub fn from_env_with(
        env: &dyn EnvSource,
        defaults: impl IntoIterator<Item = (&'static str, PerQueue)>,
    ) -> Result<Self, ConfigError> {
        let d = Self::default();
        let mut per_queue = BTreeMap::new();
        for (queue, default) in defaults {
            let settings = default.with_env(env, queue)?;
            if settings != PerQueue::default() {
                per_queue.insert(queue.to_owned(), settings);
            }
        }
        let settings = Self {
            visibility_timeout: millis_or(
                env,
                "COPYDESK_VISIBILITY_TIMEOUT_MS",
                d.visibility_timeout,
            )?,
            block: millis_or(env, "COPYDESK_CLAIM_BLOCK_MS", d.block)?,
            reclaim_interval: millis_or(env, "COPYDESK_RECLAIM_INTERVAL_MS", d.reclaim_interval)?,
            max_in_flight: positive(env, "COPYDESK_MAX_IN_FLIGHT", d.max_in_flight as u32)?
                as usize,
            max_attempts: positive(env, "COPYDESK_MAX_ATTEMPTS", d.max_attempts)?,
            per_queue,
            max_deliveries: positive(env, "COPYDESK_MAX_DELIVERIES", d.max_deliveries)?,
            backoff_base: millis_or(env, "COPYDESK_BACKOFF_BASE_MS", d.backoff_base)?,
            backoff_max: millis_or(env, "COPYDESK_BACKOFF_MAX_MS", d.backoff_max)?,
            dead_letter_max: positive(env, "COPYDESK_DEAD_LETTER_MAX", d.dead_letter_max as u32)?
                as usize,
            dead_letter_max_age: secs_or(
                env,
                "COPYDESK_DEAD_LETTER_MAX_AGE_SECS",
                d.dead_letter_max_age,
            )?,
            dead_letter_max_bytes: match parsed_or(
                env,
                "COPYDESK_DEAD_LETTER_MAX_BYTES",
                d.dead_letter_max_bytes,
            )? {
                0 => {
                    return Err(ConfigError::Invalid {
                        var: "COPYDESK_DEAD_LETTER_MAX_BYTES",
                        value: "0".into(),
                        reason: "must be at least 1".into(),
                    })
                }
                bytes => bytes,
            },
            maintenance_interval: millis_or(
                env,
                "COPYDESK_MAINTENANCE_INTERVAL_MS",
                d.maintenance_interval,
            )?,
            consumer_idle_limit: secs_or(
                env,
                "COPYDESK_CONSUMER_IDLE_SECS",
                d.consumer_idle_limit,
            )?,
            shutdown_deadline: millis_or(
                env,
                "COPYDESK_SHUTDOWN_DEADLINE_MS",
                d.shutdown_deadline,
            )?,
            consumer_name: None,
            job_deadline: deadline(env, "COPYDESK_JOB_DEADLINE_MS", d.job_deadline)?,
        };
        if settings.visibility_timeout < Duration::from_millis(100) {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_VISIBILITY_TIMEOUT_MS",
                value: settings.visibility_timeout.as_millis().to_string(),
                reason: "must be at least 100 ms".into(),
            });
        }
        Ok(settings)
    }

    /// Max attempts for `queue`: its override, else [`QueueSettings::max_attempts`].
    pub fn max_attempts_for(&self, queue: &str) -> u32 {
        self.per_queue
            .get(queue)
            .and_then(|q| q.max_attempts)
            .unwrap_or(self.max_attempts)
            .max(1)
    }

    /// The deadline of one attempt on `queue`: its override, else [`QueueSettings::job_deadline`].
    pub fn job_deadline_for(&self, queue: &str) -> Duration {
        self.per_queue
            .get(queue)
            .and_then(|q| q.job_deadline)
            .unwrap_or(self.job_deadline)
    }

    /// What `queue` sets differently (nothing, for most queues).
    pub fn queue(&self, queue: &str) -> PerQueue {
        self.per_queue.get(queue).cloned().unwrap_or_default()
    }

    /// How often running jobs refresh their claim: a third of the visibility timeout.
    pub fn lease_renewal_interval(&self) -> Duration {
        self.visibility_timeout / 3
    }

    /// The `XREADGROUP` BLOCK actually used: at most the reclaim interval, at least 1 ms.
    pub fn effective_block(&self) -> Duration {
        self.block
            .min(self.reclaim_interval)
            .max(Duration::from_millis(1))
    }

    /// Delay before the retry that follows failed attempt number `attempt` (1-based):
    /// exponential from `backoff_base`, doubled each time, capped at `backoff_max`, with
    /// jitter, computed by `backon`.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(self.backoff_base)
            .with_max_delay(self.backoff_max)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(attempt as usize)
            .build();
        let nth = (attempt.max(1) - 1) as usize;
        delays
            .nth(nth)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }
}

/// The settings one queue may set differently from the others. `None` takes the global
/// setting. To add one: a field here, a line in [`PerQueue::with_env`], a row in the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerQueue {
    /// Runs of a failing job before it is dead-lettered (`COPYDESK_MAX_ATTEMPTS_<QUEUE>`).
    pub max_attempts: Option<u32>,
    /// Longest one attempt may run (`COPYDESK_JOB_DEADLINE_MS_<QUEUE>`).
    pub job_deadline: Option<Duration>,
}

impl PerQueue {
    /// These settings with `queue`'s `COPYDESK_<SETTING>_<QUEUE>` variables applied on top.
    pub fn with_env(mut self, env: &dyn EnvSource, queue: &str) -> Result<Self, ConfigError> {
        if let Some(n) = per_queue_var::<u32>(env, "COPYDESK_MAX_ATTEMPTS_<QUEUE>", queue)? {
            if n == 0 {
                return Err(ConfigError::Invalid {
                    var: "COPYDESK_MAX_ATTEMPTS_<QUEUE>",
                    value: format!("{}=0", queue_var("COPYDESK_MAX_ATTEMPTS_<QUEUE>", queue)),
                    reason: "must be at least 1".into(),
                });
            }
            self.max_attempts = Some(n);
        }
        if let Some(ms) = per_queue_var::<u64>(env, "COPYDESK_JOB_DEADLINE_MS_<QUEUE>", queue)? {
            if ms < 10 {
                return Err(ConfigError::Invalid {
                    var: "COPYDESK_JOB_DEADLINE_MS_<QUEUE>",
                    value: format!(
                        "{}={ms}",
                        queue_var("COPYDESK_JOB_DEADLINE_MS_<QUEUE>", queue)
                    ),
                    reason: "a job deadline must be at least 10 ms".into(),
                });
            }
            self.job_deadline = Some(Duration::from_millis(ms));
        }
        Ok(self)
    }
}

/// The name of a per-queue variable: `pattern` with `<QUEUE>` replaced by the queue name in
/// upper case (`COPYDESK_MAX_ATTEMPTS_<QUEUE>` → `COPYDESK_MAX_ATTEMPTS_POST_NOTE`).
pub fn queue_var(pattern: &str, queue: &str) -> String {
    pattern.replace("<QUEUE>", &queue.to_ascii_uppercase())
}

/// A per-queue variable ([`queue_var`]) parsed, if set; an unparsable value is an error
/// naming the variable.
pub fn per_queue_var<T>(
    env: &dyn EnvSource,
    pattern: &'static str,
    queue: &str,
) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let var = queue_var(pattern, queue);
    match env.get(&var) {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|e: T::Err| ConfigError::Invalid {
                var: pattern,
                value: format!("{var}={value}"),
                reason: e.to_string(),
            }),
    }
}

fn deadline(
    env: &dyn EnvSource,
    var: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let value = millis_or(env, var, default)?;
    if value < Duration::from_millis(10) {
        return Err(ConfigError::Invalid {
            var,
            value: value.as_millis().to_string(),
            reason: "a job deadline must be at least 10 ms".into(),
        });
    }
    Ok(value)
}

fn positive(env: &dyn EnvSource, var: &'static str, default: u32) -> Result<u32, ConfigError> {
    let value: u32 = parsed_or(env, var, default)?;
    if value == 0 {
        return Err(ConfigError::Invalid {
            var,
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(value)
}

/// A consumer name unique in the group: `{host}-{pid}-{n}`, where `n` is a per-process random
/// start plus a counter, so a restarted container (same host name, pid 1) gets a new name.
pub fn new_consumer_name() -> String {
    static NONCE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nonce = *NONCE.get_or_init(|| rand::random::<u32>() % 1_000_000);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!("{host}-{}-{nonce}.{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_and_overrides() {
        let mut env = HashMap::new();
        env.insert("COPYDESK_MAX_ATTEMPTS_POST_NOTE".to_owned(), "9".to_owned());
        env.insert(
            "COPYDESK_VISIBILITY_TIMEOUT_MS".to_owned(),
            "2000".to_owned(),
        );
        let s = QueueSettings::from_env(&env).expect("valid env");
        assert_eq!(s.max_attempts_for("post_note"), 9);
        assert_eq!(s.max_attempts_for("send_reply"), 5);
        assert_eq!(s.visibility_timeout, Duration::from_secs(2));
        assert_eq!(s.lease_renewal_interval().as_millis(), 666);
    }

    #[test]
    fn every_queue_reads_its_own_override_and_kind_defaults_yield_to_it() {
        for queue in crate::jobs::ALL_QUEUES {
            let var = queue_var("COPYDESK_MAX_ATTEMPTS_<QUEUE>", queue);
            let env = HashMap::from([(var, "7".to_owned())]);
            let s = QueueSettings::from_env(&env).expect("valid env");
            assert_eq!(s.max_attempts_for(queue), 7, "{queue}");
        }
        let defaults = [(
            "post_note",
            PerQueue {
                max_attempts: Some(2),
                ..PerQueue::default()
            },
        )];
        let s = QueueSettings::from_env_with(&HashMap::new(), defaults.clone()).expect("valid");
        assert_eq!(s.max_attempts_for("post_note"), 2);
        let env = HashMap::from([("COPYDESK_MAX_ATTEMPTS_POST_NOTE".to_owned(), "3".to_owned())]);
        let s = QueueSettings::from_env_with(&env, defaults).expect("valid");
        assert_eq!(s.max_attempts_for("post_note"), 3);
        let env = HashMap::from([(
            "COPYDESK_MAX_ATTEMPTS_SEND_REPLY".to_owned(),
            "0".to_owned(),
        )]);
        assert!(QueueSettings::from_env(&env).is_err());
    }

    #[test]
    fn job_deadlines_default_and_override_per_queue() {
        let env = HashMap::from([
            ("COPYDESK_JOB_DEADLINE_MS".to_owned(), "5000".to_owned()),
            (
                "COPYDESK_JOB_DEADLINE_MS_GENERATE_DRAFT".to_owned(),
                "90000".to_owned(),
            ),
        ]);
        let s = QueueSettings::from_env(&env).expect("valid env");
        assert_eq!(s.job_deadline_for("post_note"), Duration::from_secs(5));
        assert_eq!(
            s.job_deadline_for("generate_draft"),
            Duration::from_secs(90)
        );
        let d = QueueSettings::from_env(&HashMap::new()).expect("defaults");
        assert_eq!(d.job_deadline_for("send_reply"), Duration::from_secs(120));
        let zero = HashMap::from([(
            "COPYDESK_JOB_DEADLINE_MS_POST_NOTE".to_owned(),
            "0".to_owned(),
        )]);
        let err = QueueSettings::from_env(&zero).expect_err("0 ms is no deadline");
        assert!(
            err.to_string()
                .contains("COPYDESK_JOB_DEADLINE_MS_POST_NOTE"),
            "{err}"
        );
    }

    #[test]
    fn zero_is_rejected() {
        let env = HashMap::from([("COPYDESK_MAX_IN_FLIGHT".to_owned(), "0".to_owned())]);
        assert!(QueueSettings::from_env(&env).is_err());
    }

    #[test]
    fn retry_delay_grows_with_jitter_and_is_capped() {
        let s = QueueSettings {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            ..QueueSettings::default()
        };
        let first = s.retry_delay(1);
        assert!(
            first >= Duration::from_millis(100) && first < Duration::from_millis(200),
            "{first:?}"
        );
        let third = s.retry_delay(3);
        assert!(
            third >= Duration::from_millis(400) && third < Duration::from_millis(800),
            "{third:?}"
        );
        assert!(s.retry_delay(20) <= Duration::from_millis(1000));
    }

    #[test]
    fn consumer_names_differ() {
        assert_ne!(new_consumer_name(), new_consumer_name());
    }
}
