//! `track_conversation` (`copydesk-lifecycle`): conversation state, FRT/TTR/SLA metrics,
//! auto-close. (Being wired: see the module's handler.)

use copydesk::jobs::TrackConversation;
use copydesk::queue::{JobAttempt, JobError};

use super::Deps;
use crate::lifecycle::LifecyclePolicy;

/// The lifecycle stage.
#[derive(Clone, Debug)]
pub struct LifecycleStage {
    #[allow(dead_code)]
    deps: Deps,
    #[allow(dead_code)]
    policy: std::sync::Arc<LifecyclePolicy>,
}

impl LifecycleStage {
    /// A stage applying `policy`.
    pub fn new(deps: Deps, policy: std::sync::Arc<LifecyclePolicy>) -> Self {
        Self { deps, policy }
    }

    /// Background work of the role next to its queue worker (polls, sweeps), until
    /// `shutdown` fires.
    pub async fn run_background(self, shutdown: tokio_util::sync::CancellationToken) {
        shutdown.cancelled().await;
    }

    /// Handles one attempt.
    pub async fn handle(
        &self,
        _job: TrackConversation,
        _attempt: JobAttempt,
    ) -> Result<(), JobError> {
        Ok(())
    }
}
