//! End-to-end tests.

mod chatwoot;
mod ingress;
mod ops_api;
mod pipeline;
mod queue_layer;
mod replies;
