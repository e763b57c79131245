//! [`AppState`]: what the webhook and health handlers share.

use copydesk::queue::QueueClient;
use copydesk::signature::SignatureVerifier;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::budget::BodyBudget;
use crate::spool::Spool;

/// What the request handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Where webhooks are enqueued.
    pub queue: QueueClient,
    /// Checks `X-Chatwoot-Signature`.
    pub verifier: SignatureVerifier,
    /// `COPYDESK_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// Rendered on the metrics listener.
    pub metrics: PrometheusHandle,
    /// Cancelled first on shutdown, so `/readyz` answers 503 while requests drain.
    pub draining: CancellationToken,
    /// The disk spool used while Redis is unreachable, if `COPYDESK_SPOOL_DIR` is set.
    pub spool: Option<Spool>,
    /// Memory for request bodies being read, as a whole and per client address.
    pub body_budget: BodyBudget,
    /// Legacy (unsigned, token-in-URL) webhooks, when `COPYDESK_LEGACY_WEBHOOKS=1`.
    pub legacy: Option<crate::legacy::LegacyConfig>,
}
