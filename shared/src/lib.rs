//! Copydesk's shared library: what two or more crates of the fleet use.
//!
//! - [`config`]: config sections read from the environment, with errors naming the variable.
//! - [`jobs`]: the job types of the pipeline, one per queue.

pub mod config;
pub mod jobs;

pub use jobs::{Job, JobMeta};
