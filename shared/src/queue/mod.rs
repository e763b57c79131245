//! The queue layer: Copydesk's own apalis backend on Redis Streams consumer groups.
//!
//! - [`keys`]: every Redis key name of the layer.
//! - [`client`]: the producer side — connect, enqueue with dedupe in one Lua call, ping.
//! - [`error`]: the error type, [`QueueError`].
//! - [`settings`]: [`QueueSettings`], the consumer's tunables (`COPYDESK_*` variables).
//! - [`job_error`]: [`JobError`] (what handlers return) and [`JobAttempt`] (what they may read).
//! - [`backend`]: [`StreamsBackend`], the apalis backend; [`ack_layer`]: its settling layer.
//! - [`lease`]: the per-entry [`lease::Lease`] and [`lease::ensure_held`], the fence a side
//!   effect passes.
//! - [`dead_letters`]: the bounded dead-letter store, [`DeadLetters`].
//! - [`depth`]: [`QueueDepth`] and the depth gauges.
//! - [`runner`]: [`run_worker`] and [`run_until_empty`].
//! - [`policy`]: [`check_eviction_policy`], the startup check that Redis never evicts our keys.
//!
//! See ARCHITECTURE.md, "Queue layer", for the design: one stream per queue, consumer group
//! `workers`, ack = `XACK`+`XDEL`, delayed retries in a sorted set, `XAUTOCLAIM` for orphans.

pub mod ack_layer;
pub mod backend;
mod claim;
pub mod client;
mod consumer;
pub mod dead_letters;
pub mod depth;
mod entry;
pub mod error;
pub mod job_error;
pub mod keys;
pub mod lease;
mod maintenance;
pub mod policy;
pub mod runner;
pub mod settings;
mod settle;

pub use backend::StreamsBackend;
pub use client::{Burst, NewJob, QueueClient};
pub use dead_letters::{zero_dead_letter_counters, DeadLetter, DeadLetterFilter, DeadLetters};
pub use depth::QueueDepth;
pub use error::QueueError;
pub use job_error::{JobAttempt, JobError};
pub use keys::Keys;
pub use lease::{current_visibility_timeout, ensure_held, LeaseLost};
pub use policy::{check_eviction_policy, enforce_eviction_policy};
pub use runner::{run_until_empty, run_worker, DrainOutcome};
pub use settings::QueueSettings;
pub use settle::{zero_job_counters, JOB_OUTCOMES};

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The job(s) were written.
    Queued,
    /// A dedupe key was already present: nothing was written.
    Duplicate,
}
