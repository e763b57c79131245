//! End-to-end tests.

mod chatwoot;
mod ingress;
