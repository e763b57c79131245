//! One customer message is one trace (issue 11), from webhook to private note to reply: the
//! fleet runs as separate processes exporting OTLP/HTTP to an in-process receiver that decodes
//! `ExportTraceServiceRequest` with the `opentelemetry-proto` types; an operator approves the
//! draft through the ops API; the message's spans share one trace id, come from the ingress,
//! knowledge, drafter and notes processes, every parent is in the trace except the ingress's
//! single root, and the reply's job span hangs under the operator's decision, itself under the
//! drafting span. A message whose webhook is lost is recovered by the reconciler and is one
//! trace too, rooted in its `recovered` span.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use copydesk::approvals::ApprovalStatus;
use copydesk_testkit::ingress_app::TEST_SECRET;
use copydesk_testkit::webhook::WebhookSender;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::json;
use tokio::net::TcpListener;

use copydesk_testkit::process::{role_command, TestProcess};
use copydesk_testkit::redis_server::free_port;

use crate::harness::{self, start_ingress, start_role, wait_http_ok, Proc};

const WAIT: Duration = Duration::from_secs(90);
/// The conversation whose message's webhook is lost (the reconciler recovers it).
const LOST_CONVERSATION: i64 = 106;
/// The roles started with `start_role` (notes is started apart, logging to a file).
const ROLES: [&str; 2] = ["knowledge", "drafter"];
/// The job spans of a message's way to its private note and its reply (their names are the
/// queues').
const STAGES: [&str; 4] = [
    "lookup_knowledge",
    "generate_draft",
    "post_note",
    "send_reply",
];

/// One exported span with the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    name: String,
    kind: i32,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) keeping every span it is sent.
struct OtlpReceiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Exported>>>,
}

impl OtlpReceiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("bound");
        let spans: Arc<Mutex<Vec<Exported>>> = Arc::default();
        let kept = spans.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| receive(kept.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, spans }
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends `/v1/traces`).
    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> Vec<Exported> {
        self.spans.lock().expect("spans lock").clone()
    }
}

async fn receive(
    kept: Arc<Mutex<Vec<Exported>>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path_ok = request.uri().path() == "/v1/traces";
    let protobuf = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status(400)),
    };
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return Ok(status(400));
    };
    if !path_ok || !protobuf {
        return Ok(status(404));
    }
    let mut spans = kept.lock().expect("spans lock");
    for resource_spans in export.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            spans.push(Exported {
                service: service.clone(),
                name: span.name,
                kind: span.kind,
                trace_id: span.trace_id,
                span_id: span.span_id,
                parent_span_id: span.parent_span_id,
            });
        }
    }
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    Ok(Response::builder()
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(Bytes::from(answer)))
        .expect("a valid response"))
}

fn status(code: u16) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .body(Full::new(Bytes::new()))
        .expect("a valid response")
}

/// What is wrong with the trace of the `send_reply` job span, or the trace when it is whole:
/// one root (the ingress's), every other span's parent in the trace, spans from every process.
fn trace_problems(spans: &[Exported]) -> Result<Vec<Exported>, String> {
    let note = spans
        .iter()
        .find(|s| s.name == "send_reply")
        .ok_or("no send_reply span yet")?;
    let trace: Vec<Exported> = spans
        .iter()
        .filter(|s| s.trace_id == note.trace_id)
        .cloned()
        .collect();
    let ids: HashSet<&[u8]> = trace.iter().map(|s| s.span_id.as_slice()).collect();
    let roots: Vec<&Exported> = trace
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    if roots.len() != 1 || roots[0].service != "copydesk-ingress" {
        return Err(format!("roots of the trace: {roots:?}"));
    }
    if let Some(orphan) = trace
        .iter()
        .find(|s| !s.parent_span_id.is_empty() && !ids.contains(s.parent_span_id.as_slice()))
    {
        return Err(format!("parent not (yet) in the trace: {orphan:?}"));
    }
    let services: BTreeSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
    for process in ["ingress", "knowledge", "drafter", "notes"] {
        if !services.contains(format!("copydesk-{process}").as_str()) {
            return Err(format!("no span from copydesk-{process} yet: {services:?}"));
        }
    }
    Ok(trace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_customer_message_is_one_trace_across_the_fleet() {
    let started = Instant::now();
    let http = reqwest::Client::new();
    let receiver = OtlpReceiver::start().await;
    let (p, spool) = harness::world().await;
    let mut env = p.env.clone();
    env.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.endpoint());
    env.insert("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into());
    let ingress = start_ingress(&env, &spool);
    let workers: Vec<Proc> = ROLES.iter().map(|r| start_role(r, &env)).collect();
    // The notes process logs JSON lines at info into a file, to find the trace id in them.
    let log_path = std::env::temp_dir().join(format!("copydesk-notes-{}.log", ulid::Ulid::new()));
    let log = std::fs::File::create(&log_path).expect("log file");
    let notes_port = free_port();
    let mut command = role_command(env!("CARGO_BIN_EXE_copydesk-fleet"), "notes", &env);
    command
        .env("COPYDESK_METRICS_LISTEN", format!("127.0.0.1:{notes_port}"))
        .env("RUST_LOG", "info")
        .env("COPYDESK_LOG_FORMAT", "json")
        .stderr(log);
    let notes = TestProcess::spawn(&mut command, "notes");
    let notes_metrics = format!("http://127.0.0.1:{notes_port}/metrics");
    wait_http_ok(&http, &ingress.proc.metrics_url(), WAIT).await;
    wait_http_ok(&http, &notes_metrics, WAIT).await;
    for worker in &workers {
        wait_http_ok(&http, &worker.metrics_url(), WAIT).await;
    }

    let message = p.chatwoot.incoming_messages(101)[0].clone();
    let payload = p
        .chatwoot
        .message_created_webhook(101, message.id)
        .expect("seed message");
    let sender = WebhookSender::new(http.clone(), ingress.webhook_url.clone(), TEST_SECRET);
    let answer = sender.post(&payload).await.expect("ingress answers");
    assert_eq!(answer.status(), 202);
    let id = p.approval_id(101, message.id);
    assert!(p.wait_for_note(&id, WAIT).await.is_some(), "note of {id}");
    // An operator approves the draft: the reply is sent by the notes process.
    crate::decide(
        &http,
        &ingress.ops_url,
        &id,
        "approve",
        json!({"operator": "ana"}),
    )
    .await;
    let sent = p
        .wait_for(&id, WAIT, |i| i.status == ApprovalStatus::Sent)
        .await;
    assert!(sent.is_some(), "reply of {id} sent");

    // Spans arrive batched, children before parents: wait until the trace is whole.
    let until = Instant::now() + WAIT;
    let trace = loop {
        match trace_problems(&receiver.spans()) {
            Ok(trace) => break trace,
            Err(problem) => {
                assert!(
                    Instant::now() < until,
                    "{problem}; spans: {:#?}",
                    receiver.spans()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let trace_id = trace[0].trace_id.clone();
    // Every stage of the message ran in this one trace, and no job span is elsewhere.
    for stage in STAGES {
        assert!(
            trace.iter().any(|s| s.name == stage),
            "{stage} span in the trace"
        );
    }
    let all = receiver.spans();
    let strays: Vec<&Exported> = all
        .iter()
        .filter(|s| STAGES.contains(&s.name.as_str()) && s.trace_id != trace_id)
        .collect();
    assert!(strays.is_empty(), "job spans outside the trace: {strays:?}");
    // The note and the reply are Chatwoot calls: client spans of the notes process, one
    // under each of the two job spans.
    let span = |name: &str| {
        trace
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} span in {trace:#?}"))
    };
    for job in ["post_note", "send_reply"] {
        let job_span = span(job);
        assert!(
            trace.iter().any(|s| s.service == "copydesk-notes"
                && s.kind == SpanKind::Client as i32
                && s.name == "create_message"
                && s.parent_span_id == job_span.span_id),
            "a Chatwoot client span under {job}: {trace:#?}"
        );
    }
    // The reply follows the operator's decision (an ingress span), which follows the draft.
    let decision = span("decision");
    assert_eq!(decision.service, "copydesk-ingress");
    assert_eq!(span("send_reply").parent_span_id, decision.span_id);
    assert_eq!(decision.parent_span_id, span("generate_draft").span_id);
    // Log lines written inside the trace's spans carry its id.
    let hex: String = trace_id.iter().map(|b| format!("{b:02x}")).collect();
    let logged = std::fs::read_to_string(&log_path).expect("notes log");
    let _ = std::fs::remove_file(&log_path);
    assert!(
        logged
            .lines()
            .any(|l| l.starts_with(&format!(r#"{{"trace_id":"{hex}","#))),
        "a notes log line carries trace_id {hex}:\n{logged}"
    );
    let per_service: HashMap<&str, usize> = trace.iter().fold(HashMap::new(), |mut m, s| {
        *m.entry(s.service.as_str()).or_default() += 1;
        m
    });
    println!(
        "one trace, {} spans {per_service:?}, in {:?}",
        trace.len(),
        started.elapsed()
    );

    // A message whose webhook was lost: the reconciler recovers it, and its way to the note
    // is one trace rooted in the reconciler's `recovered` span.
    let mut reconciler_env = env.clone();
    reconciler_env.insert("COPYDESK_RECONCILE_INTERVAL_MS".into(), "500".into());
    let reconciler = start_role("reconciler", &reconciler_env);
    let lost_id = harness::lose_a_webhook(&p, LOST_CONVERSATION, "Do you ship to Canada?");
    assert!(
        p.wait_for_note(&lost_id, WAIT).await.is_some(),
        "note of {lost_id}"
    );
    let until = Instant::now() + WAIT;
    let recovered = loop {
        match recovered_trace(&receiver.spans()) {
            Ok(trace) => break trace,
            Err(problem) => {
                assert!(Instant::now() < until, "{problem}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    println!(
        "the recovered message: one trace of {} spans",
        recovered.len()
    );
    // Only events that were enqueued make a `recovered` span: as many as the passes recovered
    // (the delivered message, re-read by every pass, makes none).
    let until = Instant::now() + WAIT;
    loop {
        let metrics = http
            .get(reconciler.metrics_url())
            .send()
            .await
            .expect("reconciler metrics")
            .text()
            .await
            .expect("metrics text");
        let reported: f64 = metrics
            .lines()
            .filter(|l| l.starts_with("copydesk_reconcile_recovered_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let spans = receiver
            .spans()
            .iter()
            .filter(|s| s.name == "recovered")
            .count() as f64;
        if spans == reported && spans > 0.0 {
            println!("{spans} recovered spans for {reported} recovered events");
            break;
        }
        assert!(
            Instant::now() < until,
            "{spans} recovered spans for {reported} recovered events"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(reconciler);
    drop(notes);
}

/// The trace of the recovered message's note: rooted in the reconciler's `recovered` span,
/// every parent in it, with the three job spans to the note.
fn recovered_trace(spans: &[Exported]) -> Result<Vec<Exported>, String> {
    let roots: Vec<&Exported> = spans
        .iter()
        .filter(|s| s.service == "copydesk-reconciler" && s.name == "recovered")
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    for root in roots {
        let trace: Vec<Exported> = spans
            .iter()
            .filter(|s| s.trace_id == root.trace_id)
            .cloned()
            .collect();
        if !trace.iter().any(|s| s.name == "post_note") {
            continue;
        }
        let ids: HashSet<&[u8]> = trace.iter().map(|s| s.span_id.as_slice()).collect();
        if let Some(orphan) = trace
            .iter()
            .find(|s| !s.parent_span_id.is_empty() && !ids.contains(s.parent_span_id.as_slice()))
        {
            return Err(format!(
                "parent not (yet) in the recovered trace: {orphan:?}"
            ));
        }
        for stage in &STAGES[..3] {
            if !trace.iter().any(|s| s.name == *stage) {
                return Err(format!(
                    "no {stage} span in the recovered trace: {trace:#?}"
                ));
            }
        }
        return Ok(trace);
    }
    Err(format!(
        "no recovered trace with a post_note span yet: {:#?}",
        spans
            .iter()
            .filter(|s| s.service == "copydesk-reconciler")
            .collect::<Vec<_>>()
    ))
}
