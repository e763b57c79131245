//! Every Prometheus metric of the fleet, declared once. Names end in `_total` or `_seconds`
//! (or name a gauge's unit); labels are low-cardinality and never carry an id.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::Priority;

/// Counter `{event, outcome}`: webhooks answered by the ingress. `outcome` is one of
/// `queued`, `duplicate`, `ignored`, `spooled`, `unauthorized`, `malformed`, `too_large`,
/// `unavailable`.
pub const WEBHOOKS_TOTAL: &str = "copydesk_webhooks_total";
/// Gauge `{queue, state}`: jobs per queue; `state` is `pending`, `running`, `scheduled`, `dead`.
pub const QUEUE_DEPTH: &str = "copydesk_queue_depth";
/// Gauge `{queue}`: age in seconds of the oldest unfinished entry.
pub const QUEUE_OLDEST_AGE_SECONDS: &str = "copydesk_queue_oldest_age_seconds";
/// Counter `{queue, outcome}`: finished job attempts; `outcome` is `done`, `retried`, `dead`.
pub const JOBS_TOTAL: &str = "copydesk_jobs_total";
/// Histogram `{queue}`: time one job attempt took.
pub const JOB_DURATION_SECONDS: &str = "copydesk_job_duration_seconds";
/// Histogram: webhook received → private note posted.
pub const PIPELINE_LATENCY_SECONDS: &str = "copydesk_pipeline_latency_seconds";
/// Counter `{endpoint, status}`: Chatwoot API calls; `status` is the HTTP code or `error`.
pub const CHATWOOT_REQUESTS_TOTAL: &str = "copydesk_chatwoot_requests_total";
/// Histogram: draft confidence 0–100.
pub const DRAFT_CONFIDENCE: &str = "copydesk_draft_confidence";
/// Counter `{action}`: drafts made, by recommended action.
pub const DRAFTS_TOTAL: &str = "copydesk_drafts_total";
/// Counter `{decision}`: operator decisions.
pub const APPROVALS_TOTAL: &str = "copydesk_approvals_total";
/// Histogram `{priority}`: first response time per conversation episode.
pub const FIRST_RESPONSE_SECONDS: &str = "copydesk_first_response_seconds";
/// Histogram `{priority}`: resolution time per conversation episode.
pub const RESOLUTION_SECONDS: &str = "copydesk_resolution_seconds";
/// Counter `{priority, kind}`: SLA targets missed (`kind` is `first_response` or `resolution`).
pub const SLA_BREACHES_TOTAL: &str = "copydesk_sla_breaches_total";
/// Gauge: webhooks waiting in the ingress's local spool.
pub const SPOOL_EVENTS: &str = "copydesk_spool_events";
/// Gauge: bytes of the ingress spool's files on disk.
pub const SPOOL_BYTES: &str = "copydesk_spool_bytes";
/// Gauge: the spool's bound (`COPYDESK_SPOOL_MAX_BYTES`); appends past it answer 503.
pub const SPOOL_MAX_BYTES: &str = "copydesk_spool_max_bytes";
/// Counter `{queue, reason}`: dead letters trimmed from the bounded store (`count` or `age`).
pub const DEAD_LETTERS_TRIMMED_TOTAL: &str = "copydesk_dead_letters_trimmed_total";
/// Counter `{queue}`: dead letters over the store's bound that were kept because they are
/// owed to a customer (an approved reply not yet sent).
pub const DEAD_LETTERS_TRIM_REFUSED_TOTAL: &str = "copydesk_dead_letters_trim_refused_total";
/// Counter `{outcome}`: reconciliation passes (`complete`, `partial`, `failed`, `skipped` when
/// another replica held the lock).
pub const RECONCILE_PASSES_TOTAL: &str = "copydesk_reconcile_passes_total";
/// Counter: conversations with activity since the watermark read by reconciliation passes.
pub const RECONCILE_CONVERSATIONS_SCANNED_TOTAL: &str =
    "copydesk_reconcile_conversations_scanned_total";
/// Counter `{kind}`: events no webhook delivered that a pass fed into the pipeline
/// (`customer_message`, `agent_reply`, `status`, `assignment`, `conversation`); any increase
/// means webhooks are being lost.
pub const RECONCILE_RECOVERED_TOTAL: &str = "copydesk_reconcile_recovered_total";
/// Counter: customer messages found older than the look-back window (listed, not drafted).
pub const RECONCILE_MISSED_TOTAL: &str = "copydesk_reconcile_missed_total";
/// Gauge: seconds since the oldest account watermark (how far behind reconciliation is).
pub const RECONCILE_WATERMARK_LAG_SECONDS: &str = "copydesk_reconcile_watermark_lag_seconds";
/// Histogram `{decision}`: draft stored (ready for an operator) → operator's decision.
pub const DECISION_SECONDS: &str = "copydesk_decision_seconds";
/// Counter `{action, decision}`: decisions by the drafter's recommended action, so "did
/// operators follow `send`?" is `decision="approve"` over all of `action="send"`.
pub const DECISIONS_TOTAL: &str = "copydesk_decisions_total";
/// Histogram: character-level edit distance draft → sent text of edited replies.
pub const EDIT_DISTANCE_CHARACTERS: &str = "copydesk_edit_distance_characters";
/// Counter `{flag}`: drafts carrying a flag (`safety`, `vip`, `degraded`, `placeholder`).
pub const DRAFT_FLAGS_TOTAL: &str = "copydesk_draft_flags_total";
/// Counter `{outcome}`: public replies settled, `sent` or `held_back`.
pub const REPLIES_TOTAL: &str = "copydesk_replies_total";
/// Gauge `{priority}`: approval items waiting for an operator.
pub const APPROVALS_PENDING: &str = "copydesk_approvals_pending";
/// Gauge `{priority}`: age of the oldest pending approval item (0 when none).
pub const APPROVALS_OLDEST_PENDING_AGE_SECONDS: &str =
    "copydesk_approvals_oldest_pending_age_seconds";
/// Gauge: operator sessions signed in to the console.
pub const CONSOLE_SESSIONS: &str = "copydesk_console_sessions";
/// Histogram `{queue}`: job enqueued → claimed by a worker (first delivery only).
pub const QUEUE_CLAIM_LATENCY_SECONDS: &str = "copydesk_queue_claim_latency_seconds";
/// Gauge `{role}`: 1 for every worker role this process runs (a missing role has no series).
pub const WORKER_UP: &str = "copydesk_worker_up";
/// Gauge `{version}`: always 1; the build of this process.
pub const BUILD_INFO: &str = "copydesk_build_info";
/// Gauge: bytes Redis uses (`INFO memory` `used_memory`).
pub const REDIS_MEMORY_USED_BYTES: &str = "copydesk_redis_memory_used_bytes";
/// Gauge: Redis `maxmemory` in bytes (0 when unlimited).
pub const REDIS_MEMORY_MAX_BYTES: &str = "copydesk_redis_memory_max_bytes";

/// Buckets for latency histograms, in seconds (1 ms … 10 min).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 600.0,
];
/// Buckets for conversation times, in seconds (30 s … 1 day).
const CONVERSATION_BUCKETS: &[f64] = &[30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 86400.0];
/// Buckets for operators' decision times, in seconds (5 s … 1 day).
const DECISION_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0,
];
/// Buckets for edit distances, in characters.
const EDIT_BUCKETS: &[f64] = &[
    1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
];
/// Buckets for confidence 0–100.
const CONFIDENCE_BUCKETS: &[f64] = &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle)
/// and describes every metric. Render the handle's text on `GET /metrics`.
pub fn install() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(FIRST_RESPONSE_SECONDS.into()),
                        CONVERSATION_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(RESOLUTION_SECONDS.into()),
                        CONVERSATION_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(DRAFT_CONFIDENCE.into()),
                        CONFIDENCE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(DECISION_SECONDS.into()),
                        DECISION_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(EDIT_DISTANCE_CHARACTERS.into()),
                        EDIT_BUCKETS,
                    )
                })
                .expect("bucket lists are non-empty constants")
                .install_recorder()
                .expect("the Prometheus recorder is installed once per process");
            describe();
            start_counters_at_zero();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        WEBHOOKS_TOTAL,
        "Webhooks answered by the ingress, by event and outcome"
    );
    describe_gauge!(QUEUE_DEPTH, "Jobs per queue and state");
    describe_gauge!(
        QUEUE_OLDEST_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest unfinished job"
    );
    describe_counter!(JOBS_TOTAL, "Finished job attempts by queue and outcome");
    describe_histogram!(
        JOB_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of one job attempt"
    );
    describe_histogram!(
        PIPELINE_LATENCY_SECONDS,
        Unit::Seconds,
        "Webhook received to private note posted"
    );
    describe_counter!(
        CHATWOOT_REQUESTS_TOTAL,
        "Chatwoot API calls by endpoint and status"
    );
    describe_histogram!(DRAFT_CONFIDENCE, "Draft confidence, 0 to 100");
    describe_counter!(DRAFTS_TOTAL, "Drafts made, by recommended action");
    describe_counter!(APPROVALS_TOTAL, "Operator decisions");
    describe_histogram!(
        FIRST_RESPONSE_SECONDS,
        Unit::Seconds,
        "First response time per episode"
    );
    describe_histogram!(
        RESOLUTION_SECONDS,
        Unit::Seconds,
        "Resolution time per episode"
    );
    describe_counter!(SLA_BREACHES_TOTAL, "SLA targets missed");
    describe_gauge!(SPOOL_EVENTS, "Webhooks waiting in the ingress spool");
    describe_gauge!(
        SPOOL_BYTES,
        Unit::Bytes,
        "Bytes of the ingress spool on disk"
    );
    describe_gauge!(SPOOL_MAX_BYTES, Unit::Bytes, "Bound of the ingress spool");
    describe_counter!(
        DEAD_LETTERS_TRIMMED_TOTAL,
        "Dead letters trimmed from the bounded store"
    );
    describe_counter!(RECONCILE_PASSES_TOTAL, "Reconciliation passes by outcome");
    describe_counter!(
        RECONCILE_CONVERSATIONS_SCANNED_TOTAL,
        "Conversations active since the watermark read by reconciliation"
    );
    describe_counter!(
        RECONCILE_RECOVERED_TOTAL,
        "Events no webhook delivered, recovered by reconciliation, by kind"
    );
    describe_counter!(
        RECONCILE_MISSED_TOTAL,
        "Customer messages found older than the look-back window (listed, not drafted)"
    );
    describe_gauge!(
        RECONCILE_WATERMARK_LAG_SECONDS,
        Unit::Seconds,
        "Seconds since the oldest reconciliation watermark"
    );
    describe_counter!(
        DEAD_LETTERS_TRIM_REFUSED_TOTAL,
        "Dead letters over the store's bound kept because they are owed to a customer"
    );
    describe_histogram!(
        DECISION_SECONDS,
        Unit::Seconds,
        "Draft stored to operator decision, by decision"
    );
    describe_counter!(
        DECISIONS_TOTAL,
        "Operator decisions by the drafter's recommended action and the decision"
    );
    describe_histogram!(
        EDIT_DISTANCE_CHARACTERS,
        "Character edit distance between draft and sent text of edited replies"
    );
    describe_counter!(DRAFT_FLAGS_TOTAL, "Drafts carrying a flag, by flag");
    describe_counter!(REPLIES_TOTAL, "Public replies settled: sent or held back");
    describe_gauge!(APPROVALS_PENDING, "Approval items waiting, by priority");
    describe_gauge!(
        APPROVALS_OLDEST_PENDING_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest pending approval item, by priority"
    );
    describe_gauge!(
        CONSOLE_SESSIONS,
        "Operator sessions signed in to the console"
    );
    describe_histogram!(
        QUEUE_CLAIM_LATENCY_SECONDS,
        Unit::Seconds,
        "Job enqueued to claimed by a worker"
    );
    describe_gauge!(WORKER_UP, "1 per worker role this process runs");
    describe_gauge!(BUILD_INFO, "Build of this process; always 1");
    describe_gauge!(
        REDIS_MEMORY_USED_BYTES,
        Unit::Bytes,
        "Memory Redis uses (used_memory)"
    );
    describe_gauge!(
        REDIS_MEMORY_MAX_BYTES,
        Unit::Bytes,
        "Redis maxmemory, 0 when unlimited"
    );
}

/// Exports the operator-loop counters at 0 from the start, so the first decision, reply, draft
/// or breach is an increase that `rate()` sees (a counter first scraped at 1 shows none).
fn start_counters_at_zero() {
    const DECISIONS: [&str; 4] = ["approve", "edit", "reject", "escalate"];
    const ACTIONS: [&str; 3] = ["send", "review", "escalate"];
    for decision in DECISIONS {
        metrics::counter!(APPROVALS_TOTAL, "decision" => decision).absolute(0);
        for action in ACTIONS {
            metrics::counter!(DECISIONS_TOTAL, "action" => action, "decision" => decision)
                .absolute(0);
        }
    }
    for action in ACTIONS {
        metrics::counter!(DRAFTS_TOTAL, "action" => action).absolute(0);
    }
    for flag in ["safety", "vip", "degraded", "placeholder"] {
        metrics::counter!(DRAFT_FLAGS_TOTAL, "flag" => flag).absolute(0);
    }
    for outcome in ["sent", "held_back"] {
        metrics::counter!(REPLIES_TOTAL, "outcome" => outcome).absolute(0);
    }
    for priority in Priority::ALL {
        for kind in ["first_response", "resolution"] {
            metrics::counter!(SLA_BREACHES_TOTAL, "priority" => priority.as_str(), "kind" => kind)
                .absolute(0);
        }
    }
}

/// Records enqueue → claim latency of stream entry `entry_id` (`<ms>-<seq>`, the time it was
/// added) on `queue`; only for first deliveries (a reclaim measures a crash, not the queue).
pub fn job_claimed(queue: &'static str, entry_id: &str, first_delivery: bool) {
    let added_ms = entry_id
        .split('-')
        .next()
        .and_then(|ms| ms.parse::<i64>().ok());
    if let (true, Some(added_ms)) = (first_delivery, added_ms) {
        let waited_ms = (crate::domain::now_ms() - added_ms).max(0);
        metrics::histogram!(QUEUE_CLAIM_LATENCY_SECONDS, "queue" => queue)
            .record(waited_ms as f64 / 1000.0);
    }
}

/// Sets `copydesk_worker_up{role} 1` for each role this process runs.
pub fn worker_roles_up<'r>(roles: impl IntoIterator<Item = &'r str>) {
    for role in roles {
        metrics::gauge!(WORKER_UP, "role" => role.to_owned()).set(1.0);
    }
}

/// Publishes `copydesk_webhooks_total` at 0 for the outcomes alerts watch (the ingress calls
/// it with every known event name): `unauthorized` (counted before the event is known, so
/// under `event="unknown"`), and `queued`, `unavailable` and `error` of each event.
/// `increase()` sees nothing in a series whose first sample is already 1.
pub fn zero_webhook_counters(events: impl IntoIterator<Item = &'static str>) {
    metrics::counter!(WEBHOOKS_TOTAL, "event" => "unknown", "outcome" => "unauthorized")
        .increment(0);
    for event in events {
        for outcome in ["queued", "unavailable", "error"] {
            metrics::counter!(WEBHOOKS_TOTAL, "event" => event, "outcome" => outcome).increment(0);
        }
    }
}

/// Sets the spool gauges: webhooks waiting, bytes on disk and the bound.
pub fn spool_state(events: u64, bytes: u64, max_bytes: u64) {
    metrics::gauge!(SPOOL_EVENTS).set(events as f64);
    metrics::gauge!(SPOOL_BYTES).set(bytes as f64);
    metrics::gauge!(SPOOL_MAX_BYTES).set(max_bytes as f64);
}

/// Sets `copydesk_console_sessions` (the console calls this when sessions change).
pub fn set_console_sessions(sessions: u64) {
    metrics::gauge!(CONSOLE_SESSIONS).set(sessions as f64);
}
