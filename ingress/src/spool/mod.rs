//! The ingress's local disk spool: where webhooks go while Redis cannot take them.
//!
//! Chatwoot never re-delivers an account webhook, so a 503 loses the customer's message. When
//! an enqueue fails because Redis is unreachable (connection error, timeout, `LOADING`, `OOM`,
//! read-only replica …; see [`redis_is_unreachable`]), the ingress appends the already-routed
//! enqueue request to an append-only file, fsyncs it, and answers 202 `{"status":"spooled"}`.
//! A drain task ([`Spool::drain`]) replays the records, oldest first, through the same
//! `enqueue_batch` once Redis answers again; the webhook's dedupe keys make a replay harmless
//! (a duplicate counts as done). A segment file is deleted only after every record in it is
//! stored.
//!
//! - [`record`]: the line format (`{crc32} {json}\n`), torn-tail and damage detection.
//! - `writer`: the single writer thread (group commit, segments, size bound).
//! - `drain`: the drain task.
//!
//! Guarantees and limits:
//! - A 202 `spooled` is sent only after the record is fsync'd (and its file's directory entry).
//! - While anything is spooled, new webhooks are spooled too (without trying Redis), so Redis
//!   receives events in arrival order; once the spool is empty they go straight to Redis again.
//! - The spool is bounded by `COPYDESK_SPOOL_MAX_BYTES`; when full the answer is 503.
//! - Records survive a crash or restart: at startup every existing segment is drained first.
//!   A torn last line (a crash mid-append, never acknowledged) is skipped with a warning.
//! - A record that Redis keeps refusing for another reason than an outage (a wrong key type,
//!   an ACL change) is moved to `rejected.jsonl` in the spool directory after
//!   [`DRAIN_ATTEMPTS_BEFORE_REJECT`] tries, with an error log, so one bad record cannot hold
//!   the spool back; so are damaged lines. The file is kept for inspection, never deleted.
//!   Its lines are spool records: to replay them once the cause is fixed, stop the ingress,
//!   rename it to `segment-00000000000000000000.jsonl` (the writer never uses 0) and start it.
//! - One ingress process per spool directory (give each replica its own volume).
//! - A replay deduplicates only within the dedupe TTL (24 h): records from a longer outage may
//!   start a job twice if they had also been stored before the crash.

mod drain;
pub mod record;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use copydesk::config::{parsed_or, ConfigError, EnvSource};
use copydesk::queue::{NewJob, QueueError};
use redis::{ErrorKind, ServerErrorKind};
use tokio::sync::{mpsc, oneshot, Notify};

pub use drain::{
    DRAIN_ATTEMPTS_BEFORE_REJECT, DRAIN_ENQUEUE_TIMEOUT, DRAIN_RETRY_MAX, DRAIN_RETRY_MIN,
    REJECTED_FILE,
};
pub use record::SpoolRecord;
pub use writer::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, SEGMENT_MAX_BYTES};

use writer::{Command, Segment, Writer};

/// Default `COPYDESK_SPOOL_MAX_BYTES`: 256 MiB, about 300,000 spooled webhooks (a record holds
/// the routed jobs, not the whole webhook: ~800 B for a customer message).
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// How many appends may wait for the writer thread.
const COMMAND_QUEUE: usize = 1024;

/// Where and how much to spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// `COPYDESK_SPOOL_DIR`: a directory of this process's own, on a volume that survives
    /// restarts. Created if missing.
    pub dir: PathBuf,
    /// `COPYDESK_SPOOL_MAX_BYTES`: the most the spool's files may hold together.
    pub max_bytes: u64,
}

impl SpoolConfig {
    /// A spool in `dir` with the default size bound.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: DEFAULT_SPOOL_MAX_BYTES,
        }
    }

    /// `COPYDESK_SPOOL_DIR` (unset: no spool, so webhooks get 503 while Redis is down) and
    /// `COPYDESK_SPOOL_MAX_BYTES` (default [`DEFAULT_SPOOL_MAX_BYTES`]).
    pub fn from_env(env: &dyn EnvSource) -> Result<Option<Self>, ConfigError> {
        let Some(dir) = env.get("COPYDESK_SPOOL_DIR") else {
            return Ok(None);
        };
        let max_bytes = parsed_or(env, "COPYDESK_SPOOL_MAX_BYTES", DEFAULT_SPOOL_MAX_BYTES)?;
        if max_bytes == 0 {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_SPOOL_MAX_BYTES",
                value: "0".into(),
                reason: "must be at least 1 (unset COPYDESK_SPOOL_DIR to disable the spool)".into(),
            });
        }
        Ok(Some(Self {
            dir: PathBuf::from(dir.trim()),
            max_bytes,
        }))
    }
}

/// The spool directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the spool directory {dir} (COPYDESK_SPOOL_DIR): {source}")]
pub struct SpoolError {
    /// The directory.
    pub dir: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Why a record was not spooled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The spool holds `COPYDESK_SPOOL_MAX_BYTES` already.
    #[error("the spool is full ({max_bytes} bytes)")]
    Full {
        /// The bound.
        max_bytes: u64,
    },
    /// Writing or fsyncing failed (disk full, I/O error).
    #[error("the spool cannot be written: {0}")]
    Unwritable(String),
    /// The writer thread is gone (the process is stopping).
    #[error("the spool is closed")]
    Closed,
}

/// What `/readyz` reports about the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStatus {
    /// Webhooks on disk, not yet in Redis.
    pub events: u64,
    /// Bytes of the spool's files.
    pub bytes: u64,
    /// Whether another webhook would fit and the last write worked.
    pub accepting: bool,
}

/// State shared by the handle, the writer thread and the drain task.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    max_bytes: u64,
    /// True while webhooks must be spooled: Redis was found unreachable, or records wait.
    spooling: AtomicBool,
    /// Acknowledged records in the files on disk.
    events: AtomicU64,
    /// Records of the segment being drained that are already in Redis.
    drained: AtomicU64,
    /// Bytes of the files on disk.
    bytes: AtomicU64,
    /// The last write or fsync failed.
    write_failed: AtomicBool,
    /// The last append did not fit; cleared when a segment is drained or an append fits.
    full: AtomicBool,
    /// Wakes the drain task.
    wake: Notify,
}

impl Shared {
    fn waiting(&self) -> u64 {
        self.events
            .load(Ordering::SeqCst)
            .saturating_sub(self.drained.load(Ordering::SeqCst))
    }

    fn publish(&self) {
        copydesk::metrics::spool_state(
            self.waiting(),
            self.bytes.load(Ordering::SeqCst),
            self.max_bytes,
        );
    }
}

/// A handle on the spool; cheap to clone. The writer thread stops when the last handle is
/// dropped.
#[derive(Debug, Clone)]
pub struct Spool {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
}

impl Spool {
    /// Opens (creating) the directory, checks that it is writable, accounts for segments left
    /// by an earlier run (they are drained first), and starts the writer thread.
    pub fn build(config: &SpoolConfig) -> Result<Self, SpoolError> {
        let error = |source| SpoolError {
            dir: config.dir.clone(),
            source,
        };
        let shared = Arc::new(Shared {
            dir: config.dir.clone(),
            max_bytes: config.max_bytes,
            spooling: AtomicBool::new(false),
            events: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            write_failed: AtomicBool::new(false),
            full: AtomicBool::new(false),
            wake: Notify::new(),
        });
        let writer = Writer::open(Arc::clone(&shared)).map_err(error)?;
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        std::thread::Builder::new()
            .name("copydesk-spool".into())
            .spawn(move || writer.run(receiver))
            .map_err(error)?;
        Ok(Self { shared, commands })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// True while webhooks go to the spool without trying Redis first.
    pub fn is_spooling(&self) -> bool {
        self.shared.spooling.load(Ordering::SeqCst)
    }

    /// Records that Redis could not take a webhook: until the drain task has emptied the
    /// spool, webhooks skip Redis. Returns true if this starts spooling mode.
    pub fn mark_redis_down(&self) -> bool {
        let started = !self.shared.spooling.swap(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        started
    }

    /// Appends one routed webhook and returns once it is fsync'd.
    pub async fn append(&self, dedupe_keys: &[String], jobs: &[NewJob]) -> Result<(), AppendError> {
        let record = SpoolRecord {
            dedupe_keys: dedupe_keys.to_vec(),
            jobs: jobs.to_vec(),
        };
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::Append {
                line: record.encode(),
                done,
            })
            .await
            .map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }

    /// Counts and whether it can take more, for `/readyz`.
    pub fn status(&self) -> SpoolStatus {
        let bytes = self.shared.bytes.load(Ordering::SeqCst);
        SpoolStatus {
            events: self.shared.waiting(),
            bytes,
            accepting: bytes < self.shared.max_bytes
                && !self.shared.full.load(Ordering::SeqCst)
                && !self.shared.write_failed.load(Ordering::SeqCst),
        }
    }

    async fn next_segment(&self) -> Result<Option<Segment>, AppendError> {
        let (done, answer) = oneshot::channel();
        self.commands
            .send(Command::NextSegment { done })
            .await
            .map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)
    }

    async fn release_segment(&self, seq: u64, delete: bool) {
        let (done, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Release { seq, delete, done })
            .await
            .is_ok()
        {
            let _ = answer.await;
        }
    }
}

/// True when `error` means Redis cannot take writes right now but may later: the cases the
/// spool is for. Connection failures and timeouts, a Redis loading its data after a restart,
/// a failover in progress (`READONLY`, `MASTERDOWN`, `TRYAGAIN`, `CLUSTERDOWN`), a full Redis
/// (`OOM` under `noeviction`), a Redis that cannot persist (`MISCONF`) or has no connection
/// slot left (`maxclients`). Anything else (a script error, a wrong key type, an ACL refusal)
/// would fail the same way on replay: those are answered 503 and never spooled.
pub fn redis_is_unreachable(error: &QueueError) -> bool {
    let QueueError::RedisUnavailable(error) = error else {
        return false;
    };
    if error
        .detail()
        .is_some_and(|detail| detail.contains("max number of clients"))
    {
        return true;
    }
    match error.kind() {
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::MasterDown
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
        ),
        ErrorKind::Extension => matches!(error.code(), Some("OOM" | "MISCONF")),
        _ => error.is_connection_dropped() || error.is_timeout(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use copydesk::config::env_of as env;

    #[test]
    fn no_spool_dir_means_no_spool() {
        assert_eq!(SpoolConfig::from_env(&env(&[])).expect("valid"), None);
    }

    #[test]
    fn the_size_bound_defaults_and_names_its_variable_when_invalid() {
        let config = SpoolConfig::from_env(&env(&[("COPYDESK_SPOOL_DIR", "/var/spool/x")]))
            .expect("valid")
            .expect("configured");
        assert_eq!(config.max_bytes, DEFAULT_SPOOL_MAX_BYTES);
        let err = SpoolConfig::from_env(&env(&[
            ("COPYDESK_SPOOL_DIR", "/var/spool/x"),
            ("COPYDESK_SPOOL_MAX_BYTES", "lots"),
        ]))
        .expect_err("not a number");
        assert!(
            err.to_string().contains("COPYDESK_SPOOL_MAX_BYTES"),
            "{err}"
        );
    }

    #[test]
    fn outages_are_spooled_and_data_errors_are_not() {
        let io = QueueError::RedisUnavailable(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "refused",
        )));
        let script = QueueError::RedisUnavailable(redis::RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "WRONGTYPE",
        )));
        assert!(redis_is_unreachable(&io));
        assert!(!redis_is_unreachable(&script));
        assert!(!redis_is_unreachable(&QueueError::NotFound("x".into())));
    }
}
