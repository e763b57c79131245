//! `assign_conversation` (`copydesk-assigner`): routing decision → Chatwoot assignment and
//! priority. (Being wired: see the module's handler.)

use copydesk::jobs::AssignConversation;
use copydesk::queue::{JobAttempt, JobError};

use super::Deps;
use crate::routing::RoutingTable;

/// The assignment stage.
#[derive(Clone, Debug)]
pub struct AssignStage {
    #[allow(dead_code)]
    deps: Deps,
    #[allow(dead_code)]
    table: std::sync::Arc<RoutingTable>,
}

impl AssignStage {
    /// A stage routing with `table`.
    pub fn new(deps: Deps, table: std::sync::Arc<RoutingTable>) -> Self {
        Self { deps, table }
    }

    /// Background work of the role next to its queue worker (polls, sweeps), until
    /// `shutdown` fires.
    pub async fn run_background(self, shutdown: tokio_util::sync::CancellationToken) {
        shutdown.cancelled().await;
    }

    /// Handles one attempt.
    pub async fn handle(
        &self,
        _job: AssignConversation,
        _attempt: JobAttempt,
    ) -> Result<(), JobError> {
        Ok(())
    }
}
