//! `LifecyclePolicy`: the SLA targets (from the routing file) and the auto-close delay
//! (`COPYDESK_AUTO_CLOSE_AFTER_SECS`, 7 days by default).

use std::time::Duration;

use copydesk::config::{secs_or, ConfigError, EnvSource};

use crate::routing::SlaTargets;

/// The variable holding the auto-close delay in seconds.
pub const AUTO_CLOSE_AFTER_VAR: &str = "COPYDESK_AUTO_CLOSE_AFTER_SECS";

/// Default auto-close delay: resolved conversations are closed after 7 days.
pub const DEFAULT_AUTO_CLOSE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The rules the lifecycle state machine measures against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecyclePolicy {
    /// First response and resolution targets per priority.
    pub sla: SlaTargets,
    /// How long a conversation stays resolved before it is closed.
    pub auto_close_after: Duration,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            sla: SlaTargets::default(),
            auto_close_after: DEFAULT_AUTO_CLOSE_AFTER,
        }
    }
}

impl LifecyclePolicy {
    /// The routing file's SLA targets plus `COPYDESK_AUTO_CLOSE_AFTER_SECS` (at least 1 s).
    pub fn from_env(env: &dyn EnvSource, sla: SlaTargets) -> Result<Self, ConfigError> {
        let auto_close_after = secs_or(env, AUTO_CLOSE_AFTER_VAR, DEFAULT_AUTO_CLOSE_AFTER)?;
        if auto_close_after.is_zero() {
            return Err(ConfigError::Invalid {
                var: AUTO_CLOSE_AFTER_VAR,
                value: "0".into(),
                reason: "must be at least 1 second".into(),
            });
        }
        Ok(Self {
            sla,
            auto_close_after,
        })
    }
}
