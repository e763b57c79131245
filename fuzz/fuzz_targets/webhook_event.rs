//! Fuzzes the webhook body parser and the router with arbitrary bytes.
//!
//! The ingress calls exactly these two on every correctly signed body, so whatever a
//! Chatwoot (or anyone holding a secret) sends must be either a typed event or an
//! `EventError`, and every routed event must yield jobs that encode and that a worker can
//! decode again. Panics, stack overflows (deep nesting), aborts on huge allocations and
//! a `route` error (which the ingress answers 500) are all findings.
#![no_main]

use copydesk::event::{route, Route, WebhookEvent};
use copydesk::jobs::{AssignConversation, LookupKnowledge, TrackConversation};
use copydesk::Job;
use libfuzzer_sys::fuzz_target;

/// The ingress's clock is not under the sender's control; any plausible value will do.
const RECEIVED_AT_MS: i64 = 1_785_147_330_532;

fuzz_target!(|body: &[u8]| {
    let Ok(event) = WebhookEvent::parse(body) else {
        return;
    };
    // The label is a metric label: a known event name or `unknown`, never sender text.
    let label = event.label();
    assert!(label == "unknown" || event.kind().is_some_and(|k| k.as_str() == label));
    let delivery = "fuzz-delivery-0001".parse().expect("a valid delivery id");
    let routed = route(&event, &delivery, RECEIVED_AT_MS)
        .expect("routing a parsed event never fails (the ingress would answer 500)");
    let Route::Enqueue { dedupe_keys, jobs } = routed else {
        return;
    };
    assert_eq!(dedupe_keys.len(), 2, "a delivery key and a cause key");
    assert_eq!(dedupe_keys[0], "delivery:fuzz-delivery-0001");
    assert!(!jobs.is_empty(), "an enqueue route carries jobs");
    for job in &jobs {
        assert!(!job.job_id.is_empty(), "job ids are derived, never empty");
        // What the ingress writes, a worker must be able to read back.
        let decoded = match job.queue {
            LookupKnowledge::QUEUE => {
                serde_json::from_str::<LookupKnowledge>(&job.payload).map(|_| ())
            }
            TrackConversation::QUEUE => {
                serde_json::from_str::<TrackConversation>(&job.payload).map(|_| ())
            }
            AssignConversation::QUEUE => {
                serde_json::from_str::<AssignConversation>(&job.payload).map(|_| ())
            }
            other => panic!("the ingress routed to an unexpected queue {other}"),
        };
        if let Err(error) = decoded {
            panic!(
                "job on {} does not decode: {error}\n{}",
                job.queue, job.payload
            );
        }
    }
});
