//! Copydesk workers.
