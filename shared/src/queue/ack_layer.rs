//! The backend's tower layer: runs each task in a `job` span, inside its lease's scope and
//! under its queue's deadline, times it, and after the handler returns, acks it, schedules a
//! retry or dead-letters it; the task keeps its slot until that write is done. An attempt past
//! its deadline is stopped and retried; an attempt whose lease is lost (another worker owns the
//! entry now) is stopped and not settled at all: its successor settles the entry.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis_core::error::BoxDynError;
use apalis_core::task::Task;
use futures::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument;

use super::consumer::ConsumerState;
use super::entry::EntryMeta;
use super::job_error::{classify, Verdict};
use super::lease::{self, LeaseLost};
use super::settle::{settle, Settlement};
use crate::metrics::{JOBS_TOTAL, JOB_DURATION_SECONDS};

/// Settles tasks of a [`super::StreamsBackend`]; returned by its `middleware()`.
#[derive(Clone, Debug)]
pub struct AckLayer {
    state: Arc<ConsumerState>,
}

impl AckLayer {
    pub(crate) fn new(state: Arc<ConsumerState>) -> Self {
        Self { state }
    }
}

impl<S> Layer<S> for AckLayer {
    type Service = AckService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AckService {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The service made by [`AckLayer`].
#[derive(Clone, Debug)]
pub struct AckService<S> {
    inner: S,
    state: Arc<ConsumerState>,
}

impl<S, J> Service<Task<J>> for AckService<S>
where
    S: Service<Task<J>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxDynError>,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<S::Response, BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, task: Task<J>) -> Self::Future {
        let meta = task.data().get_checked::<EntryMeta>().ok().cloned();
        let state = self.state.clone();
        let fut = self.inner.call(task);
        Box::pin(async move {
            let Some(meta) = meta else {
                return fut.await.map_err(Into::into);
            };
            let attempt = meta.runs + 1;
            let span =
                tracing::info_span!("job", job.id = %meta.job_id, job.queue = state.queue, attempt);
            let Some(lease) = state.lease(&meta.entry_id) else {
                // Not held (released by a close that gave it back): not ours to run.
                return Err(LeaseLost.into());
            };
            let deadline = state.settings.job_deadline_for(state.queue);
            let started = Instant::now();
            let run = lease::scope(lease.clone(), async {
                let result: Result<S::Response, BoxDynError> =
                    fut.instrument(span.clone()).await.map_err(Into::into);
                result
            });
            let ran = tokio::select! {
                biased;
                () = lease.lost() => None,
                ran = tokio::time::timeout(deadline, run) => Some(ran),
            };
            metrics::histogram!(JOB_DURATION_SECONDS, "queue" => state.queue)
                .record(started.elapsed().as_secs_f64());
            let Some(ran) = ran else {
                span.in_scope(|| {
                    tracing::warn!(
                        "lease lost: another worker owns this job now; stopped without settling"
                    )
                });
                metrics::counter!(JOBS_TOTAL, "queue" => state.queue, "outcome" => "lease_lost")
                    .increment(1);
                state.release(&meta.entry_id);
                return Err(LeaseLost.into());
            };
            let result: Result<S::Response, BoxDynError> = match ran {
                Ok(result) => result,
                Err(_elapsed) => Err(DeadlineExceeded(deadline).into()),
            };
            let settlement = match &result {
                Ok(_) => Settlement::Ack,
                Err(e) => {
                    let error = error_chain(e.as_ref());
                    match classify(e.as_ref()) {
                        Verdict::Permanent => Settlement::Bury {
                            error,
                            permanent: true,
                        },
                        Verdict::Retry(_) if attempt >= state.max_attempts => Settlement::Bury {
                            error,
                            permanent: false,
                        },
                        Verdict::Retry(at_least) => {
                            // A handler's `RetryAfter` is a floor, not a replacement: the
                            // exponential backoff still grows with the attempts.
                            let backoff = state.settings.retry_delay(attempt);
                            Settlement::Retry {
                                delay: at_least.map_or(backoff, |d| d.max(backoff)),
                                error,
                            }
                        }
                    }
                }
            };
            if lease.is_lost() {
                // Lost while the handler was finishing: the settle scripts would refuse anyway.
                tracing::warn!(parent: &span, "lease lost before settling; not settled");
            } else {
                settle(&state, &meta, settlement).instrument(span).await;
            }
            state.release(&meta.entry_id);
            result
        })
    }
}

/// An attempt ran past its queue's deadline (`COPYDESK_JOB_DEADLINE_MS[_<QUEUE>]`) and was
/// stopped: a failed attempt, retried like any other.
#[derive(Debug, thiserror::Error)]
#[error("the attempt ran past its {}-ms deadline and was stopped", .0.as_millis())]
pub struct DeadlineExceeded(pub Duration);

/// `error: cause: cause …`.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
