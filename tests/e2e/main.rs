//! End-to-end tests.

mod ingress;
