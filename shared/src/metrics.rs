//! Every Prometheus metric of the fleet, declared once. Names end in `_total` or `_seconds`
//! (or name a gauge's unit); labels are low-cardinality and never carry an id.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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
/// Counter `{queue, reason}`: dead letters trimmed from the bounded store (`count` or `age`).
pub const DEAD_LETTERS_TRIMMED_TOTAL: &str = "copydesk_dead_letters_trimmed_total";

/// Buckets for latency histograms, in seconds (1 ms … 10 min).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 600.0,
];
/// Buckets for conversation times, in seconds (30 s … 1 day).
const CONVERSATION_BUCKETS: &[f64] = &[30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 86400.0];
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
                .expect("bucket lists are non-empty constants")
                .install_recorder()
                .expect("the Prometheus recorder is installed once per process");
            describe();
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
    describe_counter!(
        DEAD_LETTERS_TRIMMED_TOTAL,
        "Dead letters trimmed from the bounded store"
    );
}
