//! The chaos suite (issue 5): the whole pipeline under worker SIGKILLs, Redis restarts and
//! outages, a failing Chatwoot, and dead-letter handling. Each scenario prints one line,
//! `scenario: sent N, processed N, lost 0, duplicated 0, …`, and asserts exactly once.
//! See the lines with `cargo test -p copydesk-tests --test chaos -- --nocapture`.

mod chatwoot_faults;
mod dead_letters;
mod harness;
mod redis_outages;
mod worker_kills;
