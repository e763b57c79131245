//! End-to-end tests.

mod accounts;
mod answered_before;
mod assignment;
mod bad_input;
mod big_messages;
mod bursts;
mod chatwoot;
mod chatwoot_limits;
mod config_errors;
mod dead_letter_bounds;
mod fencing;
mod ingress;
mod job_deadline;
mod legacy_webhooks;
mod lifecycle;
mod operator_loop;
mod ops_api;
mod pipeline;
mod queue_layer;
mod reconcile;
mod redis_tls;
mod replies;
mod retention;
mod spool;
mod worker_shutdown;
