//! What a job handler returns when it fails, and what it can learn about its attempt.
//!
//! Handlers return `Result<(), JobError>`; the backend's ack layer classifies the error:
//! [`JobError::Permanent`] goes straight to the dead letters, [`JobError::Retryable`] (and a
//! panic, a timeout or any other error) is retried with backoff until the attempt cap, then
//! dead-lettered. A handler that wants a degraded fallback on its last attempt reads
//! [`JobAttempt`]:
//!
//! ```ignore
//! async fn handle(job: LookupKnowledge, attempt: JobAttempt) -> Result<(), JobError> {
//!     if attempt.is_last() { /* fall back */ }
//!     Ok(())
//! }
//! ```

use std::time::Duration;

use apalis_core::error::{AbortError, RetryAfterError};
use apalis_core::task::data::MissingDataError;
use apalis_core::task::from_request::FromRequest;
use apalis_core::task::Task;

/// Why a job attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (network, 5xx, 429, timeouts).
    #[error("retryable: {0:#}")]
    Retryable(anyhow::Error),
    /// Trying again cannot help (4xx, invalid data): dead-lettered at once.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
    /// Worth another try after at least this delay (e.g. a `Retry-After` header).
    #[error("retry after {0:?}: {1:#}")]
    RetryAfter(Duration, anyhow::Error),
}

impl JobError {
    /// A retryable error from anything displayable.
    pub fn retryable(err: impl Into<anyhow::Error>) -> Self {
        Self::Retryable(err.into())
    }

    /// A permanent error from anything displayable.
    pub fn permanent(err: impl Into<anyhow::Error>) -> Self {
        Self::Permanent(err.into())
    }
}

/// The attempt a handler is running: `attempt` is 1 on the first run; `max_attempts` is the
/// queue's cap. Take it as a handler argument (`attempt: JobAttempt`, or `Data<JobAttempt>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobAttempt {
    /// This run's number, 1-based.
    pub attempt: u32,
    /// Runs allowed before the job is dead-lettered.
    pub max_attempts: u32,
    /// True when this entry was handed out before without being settled (a worker died
    /// holding it) or came back from the dead-letter store: an earlier run may have done
    /// its side effect.
    pub redelivered: bool,
}

impl JobAttempt {
    /// True on the last run the job gets: a handler may degrade instead of failing.
    pub fn is_last(&self) -> bool {
        self.attempt >= self.max_attempts
    }

    /// True when an earlier run may already have done this job's side effect (a retry, a
    /// crash redelivery or a dead-letter replay): idempotent handlers check before acting.
    pub fn may_have_run_before(&self) -> bool {
        self.attempt > 1 || self.redelivered
    }
}

impl<Args: Sync> FromRequest<Task<Args>> for JobAttempt {
    type Error = MissingDataError;
    async fn from_request(task: &Task<Args>) -> Result<Self, Self::Error> {
        task.data().get_checked::<JobAttempt>().copied()
    }
}

/// How the ack layer treats a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Retry after the backoff (or the given delay), unless attempts are used up.
    Retry(Option<Duration>),
    /// Dead-letter now.
    Permanent,
}

/// Classifies any error that came out of the service stack.
pub(crate) fn classify(err: &(dyn std::error::Error + 'static)) -> Verdict {
    if let Some(job) = err.downcast_ref::<JobError>() {
        return match job {
            JobError::Retryable(_) => Verdict::Retry(None),
            JobError::Permanent(_) => Verdict::Permanent,
            JobError::RetryAfter(delay, _) => Verdict::Retry(Some(*delay)),
        };
    }
    if let Some(after) = err.downcast_ref::<RetryAfterError>() {
        return Verdict::Retry(Some(after.get_duration()));
    }
    if err.downcast_ref::<AbortError>().is_some() {
        // Panics never get here: the runner catches them as failed attempts (`JobError`).
        return Verdict::Permanent;
    }
    Verdict::Retry(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use apalis_core::error::BoxDynError;

    #[test]
    fn classification() {
        let boxed: BoxDynError = Box::new(JobError::permanent(anyhow::anyhow!("400")));
        assert_eq!(classify(boxed.as_ref()), Verdict::Permanent);
        let boxed: BoxDynError = Box::new(JobError::retryable(anyhow::anyhow!("503")));
        assert_eq!(classify(boxed.as_ref()), Verdict::Retry(None));
        let boxed: BoxDynError = Box::new(JobError::RetryAfter(
            Duration::from_secs(7),
            anyhow::anyhow!("429"),
        ));
        assert_eq!(
            classify(boxed.as_ref()),
            Verdict::Retry(Some(Duration::from_secs(7)))
        );
        let boxed: BoxDynError = Box::new(AbortError::new("stop"));
        assert_eq!(classify(boxed.as_ref()), Verdict::Permanent);
        let boxed: BoxDynError = "plain".into();
        assert_eq!(classify(boxed.as_ref()), Verdict::Retry(None));
    }

    #[test]
    fn last_attempt() {
        assert!(!JobAttempt {
            attempt: 1,
            max_attempts: 3,
            redelivered: false,
        }
        .is_last());
        assert!(JobAttempt {
            attempt: 3,
            max_attempts: 3,
            redelivered: false,
        }
        .is_last());
    }

    #[test]
    fn a_retry_or_redelivery_may_have_run_before() {
        let first = JobAttempt {
            attempt: 1,
            max_attempts: 3,
            redelivered: false,
        };
        assert!(!first.may_have_run_before());
        assert!(JobAttempt {
            attempt: 2,
            ..first
        }
        .may_have_run_before());
        assert!(JobAttempt {
            redelivered: true,
            ..first
        }
        .may_have_run_before());
    }
}
