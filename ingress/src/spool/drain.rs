//! The drain task: replays spooled records into Redis, oldest first, and deletes a segment
//! once every record in it is stored.
//!
//! It sleeps until the spool has something, then takes the oldest segment, reads it (sealed
//! segments are never written again), and passes each record to `enqueue_batch` until Redis
//! takes it, waiting with `backon`'s exponential backoff ([`DRAIN_RETRY_MIN`] …
//! [`DRAIN_RETRY_MAX`]) while Redis is unreachable. `Queued` and `Duplicate` both mean "stored". When no segment is
//! left, the writer ends spooling mode and webhooks go straight to Redis again.
//!
//! On shutdown, once the requests are done, [`Spool::drain_before_exit`] drains what is left
//! while Redis answers, so a pod that is replaced leaves nothing behind when it need not.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use copydesk::queue::{EnqueueOutcome, QueueClient};
use tokio_util::sync::CancellationToken;

use super::record::{parse_segment, BadLine, SpoolRecord};
use super::writer::Segment;
use super::{redis_is_unreachable, Spool};

/// How long one replayed enqueue may take before it counts as "Redis unreachable".
pub const DRAIN_ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait before retrying a record Redis could not take.
pub const DRAIN_RETRY_MIN: Duration = Duration::from_millis(100);
/// Longest wait between retries: how late the drain notices that Redis is back.
pub const DRAIN_RETRY_MAX: Duration = Duration::from_secs(2);
/// How many more times shutdown pings Redis before leaving the spool on disk.
const EXIT_PROBE_ATTEMPTS: usize = 4;
/// How often a record Redis refuses for a reason other than an outage is tried before it is
/// moved to [`REJECTED_FILE`] (so one bad record cannot hold the whole spool back).
pub const DRAIN_ATTEMPTS_BEFORE_REJECT: u32 = 5;
/// Lines the drain could not use (damaged, or refused by Redis for good), in the spool
/// directory, kept for inspection and replay by hand.
pub const REJECTED_FILE: &str = "rejected.jsonl";

/// How draining one segment ended.
enum SegmentOutcome {
    /// Every record is stored: the file may go.
    Drained,
    /// `stop` was cancelled first: the file stays for the next run.
    Stopped,
    /// The file cannot be read: it stays on disk for the next start.
    Unreadable,
}

/// What happened to one record.
enum RecordOutcome {
    Stored(EnqueueOutcome),
    Rejected,
    Stopped,
}

impl Spool {
    /// Drains the spool until `stop` is cancelled. Cancelling leaves undrained records on disk
    /// for the next start; a record whose enqueue was cut short is replayed then, harmlessly.
    pub async fn drain(self, queue: QueueClient, stop: CancellationToken) {
        loop {
            if !self.is_spooling() {
                tokio::select! {
                    () = self.shared.wake.notified() => {}
                    () = stop.cancelled() => return,
                }
                continue;
            }
            if !self.drain_next(&queue, &stop).await {
                return;
            }
        }
    }

    /// For shutdown, after the last request: if Redis answers `PING`, drains every record
    /// left (for at most `within`); otherwise, or past `within`, they stay on disk for the next
    /// start. Returns true when the spool is empty.
    pub async fn drain_before_exit(&self, queue: &QueueClient, within: Duration) -> bool {
        let waiting = self.status().events;
        if waiting == 0 && !self.is_spooling() {
            return true;
        }
        // A Redis that just came back may fail the first command on a stale connection.
        let probe = (|| copydesk::health::probe_redis(queue))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(DRAIN_RETRY_MIN)
                    .with_max_delay(Duration::from_secs(1))
                    .with_max_times(EXIT_PROBE_ATTEMPTS),
            )
            .await;
        if let Err(reason) = probe {
            tracing::warn!(
                reason,
                spooled = waiting,
                "exiting with webhooks in the spool: Redis is unreachable; they are drained at the next start"
            );
            return false;
        }
        tracing::info!(
            spooled = waiting,
            "draining the spool into Redis before exit"
        );
        let stop = CancellationToken::new();
        let drained = tokio::time::timeout(within, async {
            while self.is_spooling() {
                if !self.drain_next(queue, &stop).await {
                    return false;
                }
            }
            true
        })
        .await
        .unwrap_or(false);
        if drained {
            tracing::info!("spool drained before exit");
        } else {
            tracing::warn!(
                left = self.status().events,
                timeout = ?within,
                "exiting with webhooks in the spool; they are drained at the next start"
            );
        }
        drained
    }

    /// Drains the oldest segment; false when stopped (or the writer is gone).
    async fn drain_next(&self, queue: &QueueClient, stop: &CancellationToken) -> bool {
        let segment = match self.next_segment().await {
            Ok(Some(segment)) => segment,
            Ok(None) => {
                tracing::info!("spool empty: webhooks go straight to Redis again");
                return true;
            }
            Err(_closed) => return false,
        };
        match self.drain_segment(&segment, queue, stop).await {
            SegmentOutcome::Drained => self.release_segment(segment.seq, true).await,
            SegmentOutcome::Unreadable => self.release_segment(segment.seq, false).await,
            SegmentOutcome::Stopped => return false,
        }
        true
    }

    async fn drain_segment(
        &self,
        segment: &Segment,
        queue: &QueueClient,
        stop: &CancellationToken,
    ) -> SegmentOutcome {
        let bytes = match tokio::fs::read(&segment.path).await {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return SegmentOutcome::Drained
            }
            Err(error) => {
                // Unreadable now (I/O error): the file stays, the next start tries again.
                tracing::error!(%error, path = %segment.path.display(), "cannot read a spool segment; it is kept for the next start");
                return SegmentOutcome::Unreadable;
            }
        };
        let parsed = parse_segment(&bytes);
        for bad in &parsed.bad {
            tracing::warn!(
                path = %segment.path.display(),
                offset = bad.offset,
                error = %bad.error,
                "skipping a spool record"
            );
        }
        self.reject_lines(&parsed.bad).await;
        let (mut queued, mut duplicates) = (0_u64, 0_u64);
        for record in &parsed.records {
            match self.replay(record, queue, stop).await {
                RecordOutcome::Stored(EnqueueOutcome::Queued) => queued += 1,
                RecordOutcome::Stored(EnqueueOutcome::Duplicate) => duplicates += 1,
                RecordOutcome::Rejected => {}
                RecordOutcome::Stopped => return SegmentOutcome::Stopped,
            }
            self.shared.drained.fetch_add(1, Ordering::SeqCst);
            self.shared.publish();
        }
        tracing::info!(
            path = %segment.path.display(),
            queued,
            duplicates,
            skipped = parsed.bad.len(),
            "spool segment drained into Redis"
        );
        SegmentOutcome::Drained
    }

    /// Enqueues one record, retrying while Redis is unreachable.
    async fn replay(
        &self,
        record: &SpoolRecord,
        queue: &QueueClient,
        stop: &CancellationToken,
    ) -> RecordOutcome {
        let mut waits = ExponentialBuilder::default()
            .with_min_delay(DRAIN_RETRY_MIN)
            .with_max_delay(DRAIN_RETRY_MAX)
            .without_max_times()
            .build();
        let mut warned = false;
        let mut refusals = 0;
        loop {
            let attempt = tokio::time::timeout(
                DRAIN_ENQUEUE_TIMEOUT,
                queue.enqueue_batch(&record.dedupe_keys, &record.jobs),
            );
            let result = tokio::select! {
                result = attempt => result,
                () = stop.cancelled() => return RecordOutcome::Stopped,
            };
            match result {
                Ok(Ok(outcome)) => return RecordOutcome::Stored(outcome),
                Ok(Err(error))
                    if !redis_is_unreachable(&error)
                        && refusals + 1 < DRAIN_ATTEMPTS_BEFORE_REJECT =>
                {
                    refusals += 1;
                    tracing::warn!(error = %error, attempt = refusals, "Redis refused a spooled webhook; retrying");
                }
                Ok(Err(error)) if !redis_is_unreachable(&error) => {
                    tracing::error!(
                        error = %error,
                        keys = ?record.dedupe_keys,
                        file = REJECTED_FILE,
                        "Redis refused a spooled webhook; moved to the rejected file"
                    );
                    let line = record.encode();
                    self.append_rejected(&line[..line.len() - 1]).await;
                    return RecordOutcome::Rejected;
                }
                Ok(Err(error)) if !warned => {
                    warned = true;
                    tracing::warn!(error = %error, "spool drain waiting for Redis");
                }
                Err(_) if !warned => {
                    warned = true;
                    tracing::warn!(timeout = ?DRAIN_ENQUEUE_TIMEOUT, "spool drain waiting for Redis (enqueue timed out)");
                }
                Ok(Err(_)) | Err(_) => {}
            }
            let wait = waits.next().unwrap_or(DRAIN_RETRY_MAX);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return RecordOutcome::Stopped,
            }
        }
    }

    async fn reject_lines(&self, bad: &[BadLine]) {
        for line in bad {
            self.append_rejected(&line.raw).await;
        }
    }

    /// Appends `line` (no newline) to [`REJECTED_FILE`], fsync'd; failures are logged.
    async fn append_rejected(&self, line: &[u8]) {
        let path = self.shared.dir.join(REJECTED_FILE);
        let mut bytes = line.to_vec();
        bytes.push(b'\n');
        let written = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::options()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(&bytes)?;
            file.sync_data()
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, file = REJECTED_FILE, "cannot keep a rejected spool record");
            }
            Err(error) => tracing::error!(%error, "the rejected-record writer panicked"),
        }
    }
}
