//! Running a worker on one queue: the apalis `WorkerBuilder` with a [`StreamsBackend`], panics
//! caught as failed attempts, until a cancellation token fires (graceful: stop claiming, finish
//! in-flight jobs within the deadline, give back the rest); plus `run_until_empty` for tests.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use apalis_core::worker::builder::WorkerBuilder;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::{JobAttempt, JobError, QueueClient, QueueError, QueueSettings, StreamsBackend};
use crate::jobs::Job;

/// How often `run_until_empty` looks at the queue.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// How a `run_until_empty` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Stream, pending list and delayed set were all empty.
    Drained,
    /// The deadline passed first.
    TimedOut,
}

/// Runs a worker for `J::QUEUE` until `shutdown` is cancelled. `handler(job, attempt)` runs
/// once per attempt; `Ok` acks, `Err(JobError)` retries or dead-letters, a panic is a failed
/// (retryable) attempt. On shutdown the worker stops claiming, waits for in-flight jobs up to
/// `settings.shutdown_deadline`, gives unstarted entries back and leaves the group; jobs still
/// running at the deadline are abandoned and reclaimed elsewhere after the visibility timeout.
pub async fn run_worker<J, F, Fut>(
    client: QueueClient,
    settings: QueueSettings,
    handler: F,
    shutdown: CancellationToken,
) -> Result<(), QueueError>
where
    J: Job,
    F: Fn(J, JobAttempt) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    let deadline = settings.shutdown_deadline;
    let backend = StreamsBackend::<J>::new(&client, settings)?;
    let name = backend.consumer_name().to_owned();
    let worker = WorkerBuilder::new(name.as_str()).backend(backend).build(
        move |job: J, attempt: JobAttempt| {
            let handler = handler.clone();
            async move {
                // What `.catch_panic()` does, without its fn-pointer type that makes the
                // worker future not `Send` for every lifetime (so it could not be spawned).
                match AssertUnwindSafe(handler(job, attempt)).catch_unwind().await {
                    Ok(result) => result,
                    Err(panic) => Err(JobError::Retryable(anyhow::anyhow!(
                        "handler panicked: {}",
                        panic_message(&panic)
                    ))),
                }
            }
        },
    );
    let signal = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            Ok::<(), std::io::Error>(())
        }
    };
    let run = worker.run_until(signal);
    tokio::pin!(run);
    let expired = async {
        shutdown.cancelled().await;
        tokio::time::sleep(deadline).await;
    };
    tokio::select! {
        result = &mut run => result.map_err(|e| QueueError::Worker(e.to_string())),
        () = expired => {
            tracing::warn!(queue = J::QUEUE, consumer = %name, deadline_ms = deadline.as_millis() as u64,
                "in-flight jobs did not finish before the shutdown deadline; they will be reclaimed");
            Ok(())
        }
    }
}

/// The text of a panic payload.
fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Runs a worker until `J::QUEUE` has nothing queued, running or scheduled, or `deadline`
/// passes; then shuts it down gracefully. For tests and one-shot tools.
pub async fn run_until_empty<J, F, Fut>(
    client: QueueClient,
    settings: QueueSettings,
    handler: F,
    deadline: Duration,
) -> Result<DrainOutcome, QueueError>
where
    J: Job,
    F: Fn(J, JobAttempt) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(run_worker::<J, F, Fut>(
        client.clone(),
        settings,
        handler,
        shutdown.clone(),
    ));
    let until = Instant::now() + deadline;
    let outcome = loop {
        if client.depth(J::QUEUE).await?.is_idle() {
            break DrainOutcome::Drained;
        }
        if Instant::now() >= until {
            break DrainOutcome::TimedOut;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    };
    shutdown.cancel();
    worker
        .await
        .map_err(|e| QueueError::Worker(e.to_string()))??;
    Ok(outcome)
}
