//! End-to-end tests.

mod chatwoot;
mod ingress;
mod queue_layer;
