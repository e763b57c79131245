//! Copydesk ingress.
