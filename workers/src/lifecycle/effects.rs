//! What a lifecycle step asks the wiring to do or record: metrics, reopen and close notices,
//! CSAT answers. The state machine only returns these; [`LifecycleEffect::record_metrics`]
//! turns the measurable ones into the fleet's metrics.

use copydesk::domain::Priority;
use copydesk::metrics::{FIRST_RESPONSE_SECONDS, RESOLUTION_SECONDS, SLA_BREACHES_TOTAL};
use serde::{Deserialize, Serialize};

/// Which SLA target was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaKind {
    /// No public reply within the first response target.
    FirstResponse,
    /// Not resolved within the resolution target.
    Resolution,
}

impl SlaKind {
    /// The `kind` label of `copydesk_sla_breaches_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstResponse => "first_response",
            Self::Resolution => "resolution",
        }
    }
}

/// One consequence of a conversation event. Each is produced at most once per episode (or per
/// answer, for CSAT), however often the event is replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum LifecycleEffect {
    /// The episode got its first public reply.
    FirstResponse {
        /// The conversation's priority at that moment.
        priority: Priority,
        /// First customer message of the episode → first public reply.
        seconds: f64,
    },
    /// The episode was resolved.
    Resolved {
        /// The conversation's priority at that moment.
        priority: Priority,
        /// First customer message of the episode → resolution.
        seconds: f64,
    },
    /// An SLA target was missed (counted once per episode and kind).
    SlaBreach {
        /// The conversation's priority.
        priority: Priority,
        /// Which target.
        kind: SlaKind,
    },
    /// A customer wrote on a resolved conversation: a new episode began.
    Reopened {
        /// Reopens so far, this one included.
        reopen_count: u32,
    },
    /// The customer answered the CSAT survey (or changed the answer).
    CsatRecorded {
        /// Rating 1..=5.
        rating: i64,
    },
    /// The conversation was closed (archived in our store); see the module docs.
    Closed,
}

impl LifecycleEffect {
    /// Records the effect's metric, if it has one: `copydesk_first_response_seconds{priority}`,
    /// `copydesk_resolution_seconds{priority}` or `copydesk_sla_breaches_total{priority,kind}`.
    pub fn record_metrics(&self) {
        match self {
            Self::FirstResponse { priority, seconds } => {
                metrics::histogram!(FIRST_RESPONSE_SECONDS, "priority" => priority.as_str())
                    .record(*seconds);
            }
            Self::Resolved { priority, seconds } => {
                metrics::histogram!(RESOLUTION_SECONDS, "priority" => priority.as_str())
                    .record(*seconds);
            }
            Self::SlaBreach { priority, kind } => {
                metrics::counter!(
                    SLA_BREACHES_TOTAL,
                    "priority" => priority.as_str(),
                    "kind" => kind.as_str()
                )
                .increment(1);
            }
            Self::Reopened { .. } | Self::CsatRecorded { .. } | Self::Closed => {}
        }
    }
}
