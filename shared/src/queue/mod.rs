//! The queue layer: Copydesk's own apalis backend on Redis Streams consumer groups.
//!
//! - [`keys`]: every Redis key name of the layer.
//! - [`client`]: the producer side — connect, enqueue with dedupe in one Lua call, ping.
//! - [`error`]: [`QueueError`].
//!
//! See ARCHITECTURE.md, "Queue layer", for the design: one stream per queue, consumer group
//! `workers`, ack = `XACK`+`XDEL`, delayed retries in a sorted set, `XAUTOCLAIM` for orphans.

pub mod client;
pub mod error;
pub mod keys;

pub use client::{NewJob, QueueClient};
pub use error::QueueError;
pub use keys::Keys;

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The job(s) were written.
    Queued,
    /// A dedupe key was already present: nothing was written.
    Duplicate,
}
