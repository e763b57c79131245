//! [`StreamsBackend`]: apalis-core's `Backend` on a Redis Streams consumer group.
//!
//! On the first `poll_ready` it spawns the claim loop (`claim.rs`) and the maintenance task
//! (`maintenance.rs`); `poll_next` serves decoded tasks from a channel whose senders only
//! claim as many entries as there are free slots. Its [`AckLayer`] (from `middleware()`)
//! settles every task after the handler returns. `poll_close` ends a BLOCKing read with
//! `CLIENT UNBLOCK`, gives buffered, unstarted entries back to the stream and deletes the
//! consumer if it holds nothing.

use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::future::BoxSyncFuture;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::worker::context::WorkerContext;
use futures::FutureExt;
use redis::Script;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ack_layer::AckLayer;
use super::claim::claim_loop;
use super::consumer::ConsumerState;
use super::entry::EntryMeta;
use super::maintenance::maintenance_loop;
use super::settings::new_consumer_name;
use super::{QueueClient, QueueError, QueueSettings};
use crate::jobs::Job;

/// An apalis backend consuming `J::QUEUE` as one consumer of the group `workers`.
pub struct StreamsBackend<J: Job> {
    state: Arc<ConsumerState>,
    rx: Option<mpsc::Receiver<Task<J>>>,
    tx: Option<mpsc::Sender<Task<J>>>,
    stop: CancellationToken,
    claim_task: Option<JoinHandle<()>>,
    maintenance_task: Option<JoinHandle<()>>,
    closing: Option<BoxSyncFuture<()>>,
    _job: PhantomData<fn() -> J>,
}

impl<J: Job> std::fmt::Debug for StreamsBackend<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsBackend")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<J: Job> StreamsBackend<J> {
    /// A backend for `J::QUEUE` on the client's Redis and prefix. Nothing is sent to Redis
    /// until the worker polls it.
    pub fn new(client: &QueueClient, settings: QueueSettings) -> Result<Self, QueueError> {
        let redis = client.redis_client();
        let consumer = settings
            .consumer_name
            .clone()
            .unwrap_or_else(new_consumer_name);
        let capacity = settings.max_in_flight.max(1);
        let state = ConsumerState::new(
            J::QUEUE,
            client.keys().clone(),
            client.connection(),
            redis,
            settings,
            consumer,
        );
        let (tx, rx) = mpsc::channel(capacity);
        Ok(Self {
            state: Arc::new(state),
            rx: Some(rx),
            tx: Some(tx),
            stop: CancellationToken::new(),
            claim_task: None,
            maintenance_task: None,
            closing: None,
            _job: PhantomData,
        })
    }

    /// This consumer's name in the group.
    pub fn consumer_name(&self) -> &str {
        &self.state.consumer
    }

    fn start(&mut self) {
        if let Some(tx) = self.tx.take() {
            self.claim_task = Some(tokio::spawn(claim_loop(
                self.state.clone(),
                tx,
                self.stop.clone(),
            )));
            self.maintenance_task = Some(tokio::spawn(maintenance_loop(
                self.state.clone(),
                self.stop.clone(),
            )));
            tracing::info!(queue = self.state.queue, consumer = %self.state.consumer, "consumer started");
        }
    }
}

impl<J: Job> Drop for StreamsBackend<J> {
    fn drop(&mut self) {
        // Dropped without a graceful close (deadline passed): stop the loops; held entries
        // stay pending and are reclaimed by other workers after the visibility timeout.
        self.stop.cancel();
    }
}

impl<J: Job> Backend for StreamsBackend<J> {
    type Task = Task<J>;
    type Error = QueueError;

    fn poll_ready(
        &mut self,
        _cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        self.start();
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        self.start();
        match self.rx.as_mut() {
            Some(rx) => rx.poll_recv(cx).map(|task| task.map(Ok)),
            None => Poll::Ready(None),
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        if self.closing.is_none() {
            let close = close(
                self.state.clone(),
                self.stop.clone(),
                self.rx.take(),
                self.claim_task.take(),
                self.maintenance_task.take(),
            );
            self.closing = Some(BoxSyncFuture::new(close.boxed()));
        }
        match self.closing.as_mut() {
            Some(closing) => closing.poll_unpin(cx).map(Ok),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl<J: Job> BackendConfig for StreamsBackend<J> {
    type Args = J;
    type Id = ();
    type Kind = Ephemeral;
    type Config = QueueSettings;
    type Layer = AckLayer;

    fn config(&self) -> &Self::Config {
        &self.state.settings
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> Self::Layer {
        AckLayer::new(self.state.clone())
    }
}

/// Graceful close: stop claiming, give back what was claimed but not started, leave the group.
async fn close<J: Job>(
    state: Arc<ConsumerState>,
    stop: CancellationToken,
    rx: Option<mpsc::Receiver<Task<J>>>,
    claim_task: Option<JoinHandle<()>>,
    maintenance_task: Option<JoinHandle<()>>,
) {
    let started = Instant::now();
    stop.cancel();
    if let Some(mut claim) = claim_task {
        let deadline = Instant::now() + state.settings.effective_block() + Duration::from_secs(1);
        loop {
            unblock(&state).await;
            match tokio::time::timeout(Duration::from_millis(20), &mut claim).await {
                Ok(_) => break,
                Err(_) if Instant::now() >= deadline => {
                    claim.abort();
                    break;
                }
                Err(_) => {}
            }
        }
    }
    if let Some(maintenance) = maintenance_task {
        let _ = maintenance.await;
    }
    let mut buffered: Vec<EntryMeta> = Vec::new();
    if let Some(mut rx) = rx {
        rx.close();
        while let Ok(task) = rx.try_recv() {
            if let Ok(meta) = task.data().get_checked::<EntryMeta>() {
                buffered.push(meta.clone());
            }
        }
    }
    if !buffered.is_empty() {
        match give_back(&state, &buffered).await {
            Ok(n) => tracing::info!(
                queue = state.queue,
                given_back = n,
                "unstarted jobs given back to the queue"
            ),
            Err(e) => {
                tracing::warn!(queue = state.queue, error = %e, "giving back unstarted jobs failed; they will be reclaimed")
            }
        }
        for meta in &buffered {
            state.release(&meta.entry_id);
        }
    }
    match leave(&state).await {
        Ok(true) => {
            tracing::info!(queue = state.queue, consumer = %state.consumer, elapsed_ms = started.elapsed().as_millis() as u64, "consumer closed and left the group")
        }
        Ok(false) => {
            tracing::warn!(queue = state.queue, consumer = %state.consumer, "consumer closed with entries pending; they will be reclaimed")
        }
        Err(e) => tracing::warn!(queue = state.queue, error = %e, "leaving the group failed"),
    }
}

/// `CLIENT UNBLOCK` the claim connection, so a BLOCKing read returns now.
async fn unblock(state: &ConsumerState) {
    let id = state.claim_client_id.load(Ordering::SeqCst);
    if id == 0 {
        return;
    }
    let mut conn = state.conn.clone();
    let unblocked: Result<i64, redis::RedisError> = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .query_async(&mut conn)
        .await;
    if let Err(e) = unblocked {
        tracing::debug!(error = %e, "CLIENT UNBLOCK failed");
    }
}

async fn give_back(state: &ConsumerState, entries: &[EntryMeta]) -> Result<i64, redis::RedisError> {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    let script = SCRIPT.get_or_init(|| Script::new(include_str!("lua/give_back.lua")));
    let mut invocation = script.key(&state.stream);
    invocation.arg(state.group()).arg(&state.consumer);
    for meta in entries {
        invocation
            .arg(&meta.entry_id)
            .arg(&meta.job_id)
            .arg(meta.runs)
            .arg(meta.payload.as_ref())
            .arg(meta.first_failed_at_ms)
            .arg(meta.redrives);
    }
    let mut conn = state.conn.clone();
    invocation.invoke_async(&mut conn).await
}

async fn leave(state: &ConsumerState) -> Result<bool, redis::RedisError> {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    let mut conn = state.conn.clone();
    let left: i64 = SCRIPT
        .get_or_init(|| Script::new(include_str!("lua/leave.lua")))
        .key(&state.stream)
        .arg(state.group())
        .arg(&state.consumer)
        .invoke_async(&mut conn)
        .await?;
    Ok(left == 1)
}
