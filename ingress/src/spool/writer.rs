//! The spool's one writer: a dedicated thread that owns the segment files, so appends are
//! serialised without a lock and fsyncs are shared (group commit).
//!
//! Requests and the drain task talk to it over a channel. Each turn it takes every append
//! already queued (up to [`MAX_BATCH_RECORDS`] / [`MAX_BATCH_BYTES`]), writes them, calls
//! `fdatasync` once, and only then answers each request: a request that hears `Ok` has its
//! record on disk. Files are `segment-{seq:020}.jsonl`; only the newest ("active") one is
//! appended to, and never one that existed before this process started or that saw a failed
//! write, so a torn record can only ever be the last line of a file.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::record::count_records;
use super::{AppendError, Shared};

/// A segment stops taking appends once it holds this much, so a drained segment frees disk
/// space early and the drain reads bounded files.
pub const SEGMENT_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Most appends written under one fsync.
pub const MAX_BATCH_RECORDS: usize = 256;
/// Most bytes written under one fsync.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// File-name prefix and suffix of segments.
const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".jsonl";

/// Where the writer answers one append.
type AppendAck = oneshot::Sender<Result<(), AppendError>>;

/// What the writer thread is asked to do.
pub(super) enum Command {
    /// Append one encoded record; answer once it is fsync'd.
    Append { line: Vec<u8>, done: AppendAck },
    /// The oldest segment to drain (sealing the active one if it is the only one left), or
    /// `None` when the spool is empty, which also ends spooling mode.
    NextSegment {
        done: oneshot::Sender<Option<Segment>>,
    },
    /// Segment `seq` is done with: every record is in Redis (`delete`), or it cannot be read
    /// and stays on disk for the next start (`!delete`).
    Release {
        seq: u64,
        delete: bool,
        done: oneshot::Sender<()>,
    },
}

/// A segment file and what it holds.
#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub(super) seq: u64,
    pub(super) path: PathBuf,
    pub(super) bytes: u64,
    /// Acknowledged records in it.
    pub(super) events: u64,
}

struct Active {
    segment: Segment,
    file: File,
}

/// The thread's state: the sealed segments, oldest first, and the one being appended to.
pub(super) struct Writer {
    shared: Arc<Shared>,
    /// `spool.lock`, locked for as long as this writer lives: one ingress per directory.
    _lock: fs::File,
    next_seq: u64,
    active: Option<Active>,
    sealed: VecDeque<Segment>,
}

/// Takes the directory's `spool.lock` (released when the file closes, also when the process
/// dies): two ingress processes appending to and draining one spool would interleave
/// segments and replay each other's records.
fn lock_dir(dir: &std::path::Path) -> io::Result<fs::File> {
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("spool.lock"))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "another copydesk-ingress process is using it (spool.lock is locked); give each \
             ingress its own COPYDESK_SPOOL_DIR",
        )),
        Err(fs::TryLockError::Error(error)) => Err(error),
    }
}

impl Writer {
    /// Scans `dir` (creating it if needed): every existing segment is sealed, to be drained
    /// first; new appends go to a new segment. Proves the directory is writable.
    pub(super) fn open(shared: Arc<Shared>) -> io::Result<Self> {
        let dir = shared.dir.clone();
        fs::create_dir_all(&dir)?;
        probe_writable(&dir)?;
        let lock = lock_dir(&dir)?;
        let mut sealed = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let Some(seq) = entry.file_name().to_str().and_then(segment_seq) else {
                continue;
            };
            let bytes = fs::read(entry.path())?;
            sealed.push(Segment {
                seq,
                path: entry.path(),
                bytes: bytes.len() as u64,
                events: count_records(&bytes),
            });
        }
        sealed.sort_by_key(|segment| segment.seq);
        let events: u64 = sealed.iter().map(|s| s.events).sum();
        let bytes: u64 = sealed.iter().map(|s| s.bytes).sum();
        shared.events.store(events, Ordering::SeqCst);
        shared.bytes.store(bytes, Ordering::SeqCst);
        shared.spooling.store(!sealed.is_empty(), Ordering::SeqCst);
        if !sealed.is_empty() {
            tracing::info!(
                dir = %dir.display(),
                segments = sealed.len(),
                events,
                bytes,
                "spool holds webhooks from an earlier run; they are drained to Redis first"
            );
        }
        shared.publish();
        Ok(Self {
            _lock: lock,
            next_seq: sealed.last().map_or(1, |s| s.seq + 1),
            shared,
            active: None,
            sealed: sealed.into(),
        })
    }

    /// Serves commands until every sender is gone.
    pub(super) fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(first) = commands.blocking_recv() {
            let mut appends = Vec::new();
            let mut others = Vec::new();
            let mut batch_bytes = 0;
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append { line, done } => {
                        batch_bytes += line.len();
                        appends.push((line, done));
                    }
                    other => others.push(other),
                }
                if appends.len() < MAX_BATCH_RECORDS && batch_bytes < MAX_BATCH_BYTES {
                    next = commands.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.append_batch(appends);
            }
            for command in others {
                match command {
                    Command::NextSegment { done } => {
                        let _ = done.send(self.next_segment());
                    }
                    Command::Release { seq, delete, done } => {
                        self.release(seq, delete);
                        let _ = done.send(());
                    }
                    Command::Append { .. } => unreachable!("appends are batched above"),
                }
            }
        }
    }

    fn append_batch(&mut self, batch: Vec<(Vec<u8>, AppendAck)>) {
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.segment.bytes >= SEGMENT_MAX_BYTES)
        {
            self.seal_active();
        }
        let mut written = Vec::with_capacity(batch.len());
        // Set once the active file may end in a partial record: nothing more goes into it.
        let mut broken: Option<String> = None;
        for (line, done) in batch {
            if let Some(reason) = &broken {
                let _ = done.send(Err(AppendError::Unwritable(reason.clone())));
                continue;
            }
            let stored = self.shared.bytes.load(Ordering::SeqCst);
            if stored + line.len() as u64 > self.shared.max_bytes {
                self.shared.full.store(true, Ordering::SeqCst);
                let _ = done.send(Err(AppendError::Full {
                    max_bytes: self.shared.max_bytes,
                }));
                continue;
            }
            match self.write_line(&line) {
                Ok(()) => {
                    self.shared.full.store(false, Ordering::SeqCst);
                    written.push(done);
                }
                Err((error, clean)) => {
                    tracing::error!(%error, dir = %self.shared.dir.display(), "spool write failed");
                    self.shared.write_failed.store(true, Ordering::SeqCst);
                    if !clean {
                        broken = Some(error.to_string());
                    }
                    let _ = done.send(Err(AppendError::Unwritable(error.to_string())));
                }
            }
        }
        if !written.is_empty() {
            let active = self
                .active
                .as_mut()
                .expect("a record was written, so a segment is active");
            match active.file.sync_data() {
                Ok(()) => {
                    let n = written.len() as u64;
                    active.segment.events += n;
                    self.shared.events.fetch_add(n, Ordering::SeqCst);
                    self.shared.spooling.store(true, Ordering::SeqCst);
                    self.shared.write_failed.store(false, Ordering::SeqCst);
                    for done in written {
                        let _ = done.send(Ok(()));
                    }
                    self.shared.wake.notify_one();
                }
                Err(error) => {
                    // After a failed fsync the page cache cannot be trusted: answer 503 for
                    // the whole batch and never append to this file again. (Records of the
                    // batch that did reach the disk are drained anyway; replays are harmless.)
                    tracing::error!(%error, dir = %self.shared.dir.display(), "spool fsync failed");
                    self.shared.write_failed.store(true, Ordering::SeqCst);
                    broken = Some(error.to_string());
                    for done in written {
                        let _ = done.send(Err(AppendError::Unwritable(error.to_string())));
                    }
                }
            }
        }
        if broken.is_some() {
            self.seal_active();
            self.shared.wake.notify_one();
        }
        self.shared.publish();
    }

    /// Appends one line to the active segment (opening one if needed). On failure, says
    /// whether the file was cut back to its previous length (`true`) or may now end in a
    /// partial record.
    fn write_line(&mut self, line: &[u8]) -> Result<(), (io::Error, bool)> {
        if self.active.is_none() {
            let active = self.create_segment().map_err(|e| (e, true))?;
            self.active = Some(active);
        }
        let active = self.active.as_mut().expect("just ensured");
        let before = active.segment.bytes;
        match active.file.write_all(line) {
            Ok(()) => {
                active.segment.bytes += line.len() as u64;
                self.shared
                    .bytes
                    .fetch_add(line.len() as u64, Ordering::SeqCst);
                Ok(())
            }
            Err(error) => {
                let clean = active.file.set_len(before).is_ok();
                Err((error, clean))
            }
        }
    }

    /// A new, empty segment whose directory entry is durable before any record in it is
    /// acknowledged.
    fn create_segment(&mut self) -> io::Result<Active> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let path = self
            .shared
            .dir
            .join(format!("{SEGMENT_PREFIX}{seq:020}{SEGMENT_SUFFIX}"));
        let file = File::options().create_new(true).append(true).open(&path)?;
        if let Err(error) = sync_dir(&self.shared.dir) {
            let _ = fs::remove_file(&path);
            return Err(error);
        }
        Ok(Active {
            segment: Segment {
                seq,
                path,
                bytes: 0,
                events: 0,
            },
            file,
        })
    }

    fn seal_active(&mut self) {
        if let Some(active) = self.active.take() {
            self.sealed.push_back(active.segment);
        }
    }

    fn next_segment(&mut self) -> Option<Segment> {
        if self.sealed.is_empty() {
            self.seal_active();
        }
        let next = self.sealed.front().cloned();
        if next.is_none() {
            // Nothing on disk: webhooks may go straight to Redis again. An append still in the
            // channel sets spooling back on when it lands.
            self.shared.spooling.store(false, Ordering::SeqCst);
        }
        next
    }

    fn release(&mut self, seq: u64, delete: bool) {
        let Some(index) = self.sealed.iter().position(|s| s.seq == seq) else {
            return;
        };
        let segment = self.sealed.remove(index).expect("the index was just found");
        let removed = if delete {
            fs::remove_file(&segment.path)
        } else {
            Ok(())
        };
        match removed {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => tracing::error!(
                %error,
                path = %segment.path.display(),
                "cannot delete a drained spool segment; it will be replayed (harmlessly) at the next start"
            ),
        }
        if let Err(error) = sync_dir(&self.shared.dir) {
            tracing::warn!(%error, "cannot fsync the spool directory after deleting a segment");
        }
        let sub = |counter: &std::sync::atomic::AtomicU64, n: u64| {
            let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_sub(n))
            });
        };
        sub(&self.shared.events, segment.events);
        sub(&self.shared.bytes, segment.bytes);
        self.shared.drained.store(0, Ordering::SeqCst);
        self.shared.full.store(false, Ordering::SeqCst);
        self.shared.publish();
    }
}

/// The sequence number of a segment file name, or `None` for any other file.
fn segment_seq(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Makes created and deleted directory entries durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Fails at startup, not at the first outage, when the directory cannot take a file.
fn probe_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(".probe");
    let result = File::create(&probe).and_then(|mut f| {
        f.write_all(b"probe")?;
        f.sync_all()
    });
    let _ = fs::remove_file(&probe);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_segment_files_have_a_sequence_number() {
        assert_eq!(segment_seq("segment-00000000000000000042.jsonl"), Some(42));
        assert_eq!(segment_seq("segment-42.jsonl"), None);
        assert_eq!(segment_seq("rejected.jsonl"), None);
        assert_eq!(segment_seq(".probe"), None);
    }
}
