//! End-to-end tests.

mod chatwoot;
mod ingress;
mod pipeline;
mod queue_layer;
mod replies;
