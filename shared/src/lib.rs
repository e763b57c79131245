//! Copydesk's shared library: what two or more crates of the fleet use.
//!
//! - [`accounts`]: Chatwoot accounts bound to their API token, webhook secrets, legacy token.
//! - [`approval_facts`]: an approval item's team and the evidence its drafter saw (console).
//! - [`approvals`]: the approval store (drafts waiting for operators).
//! - [`chatwoot`]: the Chatwoot REST client (classified errors, config section).
//! - [`config`]: config sections read from the environment, with errors naming the variable.
//! - [`domain`]: ids, priority, recommended action, reported status, the clock.
//! - [`event`]: the typed Chatwoot webhook model and its routing to jobs.
//! - [`events`]: the operator event stream (new drafts, decisions) behind `GET /api/events`.
//! - [`health`]: the `/livez`, `/readyz` and `/metrics` answers of every process.
//! - [`http_body`]: reading upstream answers with a size cap ([`http_body::read_capped`]).
//! - [`jobs`]: the job types of the pipeline, one per queue.
//! - [`learning`]: one record per operator decision (draft vs. final text) for JSONL export.
//! - [`metrics`]: every Prometheus metric name, declared once, and the exporter.
//! - [`observe`]: metrics about drafts, decisions and Redis (pending approvals, memory).
//! - [`queue`]: the Redis Streams queue layer (producer, apalis backend, dead letters).
//! - [`signature`]: Chatwoot webhook signature verification (HMAC-SHA256, several secrets).
//! - [`stats`]: the console's stats (drafts, decisions, FRT/TTR, SLA breaches) from stored data.
//! - [`shutdown`]: SIGTERM/SIGINT → a cancellation token.
//! - [`telemetry`]: tracing setup.

#![deny(missing_docs)]

pub mod accounts;
pub mod approval_facts;
pub mod approvals;
pub mod chatwoot;
pub mod config;
pub mod domain;
pub mod event;
pub mod events;
pub mod health;
pub mod http_body;
pub mod jobs;
pub mod learning;
pub mod metrics;
pub mod observe;
pub mod operator;
pub mod queue;
pub mod reconcile;
pub mod redis_store;
pub mod retention;
pub mod shutdown;
pub mod signature;
pub mod stats;
pub mod telemetry;

pub use jobs::{Job, JobMeta};
