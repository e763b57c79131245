//! Redis key names of the queue layer, in one place so ops tools, tests and workers agree.

/// Consumer group every worker of a queue joins.
pub const GROUP: &str = "workers";

/// The key names under one prefix (`copydesk` in production; unique per test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The namespace.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Stream holding a queue's unfinished jobs: `{prefix}:{queue}`.
    pub fn stream(&self, queue: &str) -> String {
        format!("{}:{queue}", self.prefix)
    }

    /// Sorted set of jobs waiting to be retried, scored by due time in ms.
    pub fn delayed(&self, queue: &str) -> String {
        format!("{}:{queue}:delayed", self.prefix)
    }

    /// Dedupe marker for one idempotency key.
    pub fn dedupe(&self, key: &str) -> String {
        format!("{}:dedupe:{key}", self.prefix)
    }

    /// Sorted set of dead-letter ids scored by last failure time (ms).
    pub fn dead_index(&self) -> String {
        format!("{}:dead", self.prefix)
    }

    /// Hash of dead-letter id → JSON record.
    pub fn dead_items(&self) -> String {
        format!("{}:dead:items", self.prefix)
    }

    /// Any other key under the prefix, e.g. `keys.other("approvals:pending")`.
    pub fn other(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }
}
