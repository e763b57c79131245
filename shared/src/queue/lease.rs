//! The lease a worker holds on each claimed entry, and the fence every side effect passes.
//!
//! Redis is the owner of record: an entry belongs to the consumer `XPENDING` names. Renewal
//! (`lua/renew.lua`) and every settle script refresh or settle an entry only while this
//! consumer is still that owner, so a worker that stalled past the visibility timeout and was
//! replaced can neither take the entry back nor ack its successor's attempt.
//!
//! Locally, each held entry has a [`Lease`]: valid for two thirds of the visibility timeout
//! after the last claim or renewal *sent* (another worker can reclaim only after a full
//! visibility timeout of idleness on Redis' clock, which starts no earlier), and marked lost
//! when a renewal finds another owner. The ack layer runs the job inside the lease's scope and
//! stops it (drops its future, settles nothing) once the lease is lost. Handlers and clients
//! call [`ensure_held`] right before a side effect that must happen once — the Chatwoot
//! client does it before every write — so a worker resumed after a stall (SIGSTOP, GC pause,
//! CPU starvation) refuses the write instead of racing its successor: the check is local and
//! reads a monotonic clock that keeps running while the process is stopped.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Share of the visibility timeout a claim or renewal is trusted for locally.
const VALID_SHARE_NUM: u32 = 2;
const VALID_SHARE_DEN: u32 = 3;

/// One claimed entry's lease.
#[derive(Debug)]
pub struct Lease {
    visibility_timeout: Duration,
    valid_for: Duration,
    renewed_at: Mutex<Instant>,
    lost: CancellationToken,
}

impl Lease {
    /// A lease claimed at `at` under `visibility_timeout`.
    pub(crate) fn new(at: Instant, visibility_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            visibility_timeout,
            valid_for: visibility_timeout * VALID_SHARE_NUM / VALID_SHARE_DEN,
            renewed_at: Mutex::new(at),
            lost: CancellationToken::new(),
        })
    }

    /// Records a renewal sent at `at` that Redis confirmed.
    pub(crate) fn renewed(&self, at: Instant) {
        let mut renewed = self.renewed_at.lock().unwrap_or_else(|e| e.into_inner());
        if at > *renewed {
            *renewed = at;
        }
    }

    /// Marks the lease lost: another consumer owns the entry now.
    pub(crate) fn lose(&self) {
        self.lost.cancel();
    }

    /// True once a renewal found another owner.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// True while no other worker can have taken the entry: not lost, and renewed recently
    /// enough.
    pub fn is_held(&self) -> bool {
        !self.is_lost()
            && self
                .renewed_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed()
                < self.valid_for
    }

    /// Resolves when the lease is lost.
    pub(crate) async fn lost(&self) {
        self.lost.cancelled().await;
    }
}

tokio::task_local! {
    static CURRENT: Arc<Lease>;
}

/// The running job's lease is lost or expired: another worker may be running it now, so the
/// side effect was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this worker no longer holds the job's lease (stalled past the visibility timeout or reclaimed elsewhere); the side effect was not made")]
pub struct LeaseLost;

/// Ok outside a job, or while the running job's lease is held; [`LeaseLost`] otherwise. Call
/// it right before a side effect that must happen once.
pub fn ensure_held() -> Result<(), LeaseLost> {
    match CURRENT.try_with(|lease| lease.is_held()) {
        Ok(false) => Err(LeaseLost),
        Ok(true) | Err(_) => Ok(()),
    }
}

/// The visibility timeout the running job was claimed under (`None` outside a job): no other
/// worker can take the job sooner than this after its last renewal, so a lock that only has to
/// keep a second holder of the same job out needs to live no longer.
pub fn current_visibility_timeout() -> Option<Duration> {
    CURRENT.try_with(|lease| lease.visibility_timeout).ok()
}

/// Runs `fut` with `lease` as the current job's lease.
pub(crate) async fn scope<F: Future>(lease: Arc<Lease>, fut: F) -> F::Output {
    CURRENT.scope(lease, fut).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outside_a_job_nothing_is_fenced() {
        assert_eq!(ensure_held(), Ok(()));
    }

    #[tokio::test]
    async fn a_fresh_lease_passes_and_a_stale_or_lost_one_does_not() {
        let fresh = Lease::new(Instant::now(), Duration::from_secs(30));
        assert_eq!(scope(fresh.clone(), async { ensure_held() }).await, Ok(()));
        fresh.lose();
        assert_eq!(scope(fresh, async { ensure_held() }).await, Err(LeaseLost));

        let visibility = Duration::from_millis(300);
        let stale = Lease::new(Instant::now() - visibility, visibility);
        assert!(!stale.is_held());
        assert_eq!(
            scope(stale.clone(), async { ensure_held() }).await,
            Err(LeaseLost)
        );
        stale.renewed(Instant::now());
        assert!(stale.is_held(), "a confirmed renewal makes it valid again");
    }
}
