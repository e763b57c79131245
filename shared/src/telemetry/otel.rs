//! Optional OpenTelemetry trace export and the trace context of job envelopes.
//!
//! Off by default: only when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`, and
//! `OTEL_TRACES_EXPORTER` is not `none`) does a process export spans, over OTLP/HTTP with
//! protobuf bodies, batched (`OTEL_BSP_*`), sampled per `OTEL_TRACES_SAMPLER` /
//! `OTEL_TRACES_SAMPLER_ARG`, with the resource of `OTEL_SERVICE_NAME` /
//! `OTEL_RESOURCE_ATTRIBUTES` (the SDK reads them). Without an endpoint no layer is installed
//! and [`job_span`] / [`stamp_trace_context`] only cost an atomic load.
//!
//! The W3C trace context travels in every job's [`JobMeta`] (`traceparent`, `tracestate`):
//! the ingress's webhook span is the root, each job run is a span whose parent is its
//! envelope's context, and every job encoded inside a span carries that span's context.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetrySpanExt as _, OtelData};
use tracing_subscriber::registry::{LookupSpan, Scope};
use tracing_subscriber::{EnvFilter, Registry};

use crate::jobs::JobMeta;

/// True once this process's subscriber exports spans.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The OpenTelemetry layer as [`super::init_service`] stacks it.
pub(crate) type Layer = tracing_opentelemetry::OpenTelemetryLayer<Registry, Tracer>;

/// Which spans are exported: Copydesk's own at `info` and above, whatever `RUST_LOG` says
/// for log lines (`COPYDESK_TRACES_FILTER`, an `EnvFilter` directive, overrides it).
const DEFAULT_SPAN_FILTER: &str = "warn,copydesk=info,copydesk_ingress=info,copydesk_workers=info";

/// The filter of the exporting layer.
pub(crate) fn span_filter() -> EnvFilter {
    std::env::var("COPYDESK_TRACES_FILTER")
        .ok()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_SPAN_FILTER))
}

/// The trace exporter of a process (or none): keep it until exit; dropping it flushes the
/// spans still buffered and shuts the exporter down.
pub struct Traces {
    provider: Option<SdkTracerProvider>,
    layer: Option<Layer>,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces")
            .field("exporting", &self.provider.is_some())
            .finish()
    }
}

impl Traces {
    /// No export.
    pub fn off() -> Self {
        Self {
            provider: None,
            layer: None,
        }
    }

    /// True when spans are exported.
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// The exporter the `OTEL_*` variables configure, or [`Traces::off`] when no OTLP
    /// endpoint is set. Fails only when the exporter cannot be built.
    pub fn from_env(default_service_name: &str) -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .is_some();
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        if !endpoint || disabled {
            return Ok(Self::off());
        }
        if let Some(protocol) = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .filter(|p| p != "http/protobuf")
        {
            anyhow::bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only http/protobuf is supported"
            );
        }
        // The endpoint, headers and timeout come from the OTEL_EXPORTER_OTLP_* variables.
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build()?;
        let named = var("OTEL_SERVICE_NAME").is_some()
            || var("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|v| {
                v.split(',')
                    .any(|pair| pair.trim_start().starts_with("service.name="))
            });
        let resource = if named {
            Resource::builder()
        } else {
            Resource::builder().with_service_name(default_service_name.to_owned())
        };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("copydesk"))
            .with_tracked_inactivity(false)
            .with_threads(false);
        Ok(Self {
            provider: Some(provider),
            layer: Some(layer),
        })
    }

    /// The layer to install (once); marks the process as exporting.
    pub(crate) fn take_layer(&mut self) -> Option<Layer> {
        let layer = self.layer.take();
        if layer.is_some() {
            ENABLED.store(true, Ordering::Release);
        }
        layer
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            ENABLED.store(false, Ordering::Release);
            if let Err(error) = provider.shutdown() {
                eprintln!("warning: flushing traces at exit: {error}");
            }
        }
    }
}

/// True when this process exports spans.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// A W3C trace context (`traceparent`, optional `tracestate`) as job envelopes and stored
/// drafts carry it, so work started later (an operator's decision) joins the message's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// W3C `traceparent`.
    pub traceparent: String,
    /// W3C `tracestate`, when not empty.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The current span's context, or `None` when no exported span is current.
    pub fn current() -> Option<Self> {
        if !enabled() {
            return None;
        }
        let context = Span::current().context();
        if !context.span().span_context().is_valid() {
            return None;
        }
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        Some(Self {
            traceparent: carrier.remove("traceparent")?,
            tracestate: carrier.remove("tracestate").filter(|s| !s.is_empty()),
        })
    }

    /// The context stored as the two optional fields of `JobMeta` or `DraftDoc`.
    pub fn from_fields(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Self> {
        Some(Self {
            traceparent: traceparent?.to_owned(),
            tracestate: tracestate.map(str::to_owned),
        })
    }

    /// Makes this context the remote parent of `span` (when spans are exported and the
    /// context is valid; otherwise `span` stays as it is).
    pub fn adopt(&self, span: &Span) {
        if !enabled() {
            return;
        }
        let mut carrier = HashMap::from([("traceparent".to_owned(), self.traceparent.clone())]);
        if let Some(tracestate) = &self.tracestate {
            carrier.insert("tracestate".to_owned(), tracestate.clone());
        }
        let context = TraceContextPropagator::new().extract(&carrier);
        if context.span().span_context().is_valid() {
            let _ = span.set_parent(context);
        }
    }
}

/// The span of one run of a job of `queue`: its parent is the trace context of the job's
/// envelope (when it has one and spans are exported), so the run joins the message's trace.
pub fn job_span(queue: &'static str, meta: &JobMeta, attempt: u32) -> Span {
    let span = tracing::info_span!(
        "job",
        otel.name = queue,
        otel.kind = "consumer",
        queue,
        attempt,
        delivery_id = %meta.delivery_id,
    );
    if let Some(parent) =
        TraceContext::from_fields(meta.traceparent.as_deref(), meta.tracestate.as_deref())
    {
        parent.adopt(&span);
    }
    span
}

/// Writes the current span's trace context into `meta` (so a job enqueued here continues
/// this trace); returns false, leaving `meta` as it was, when there is no exported span.
pub fn stamp_trace_context(meta: &mut JobMeta) -> bool {
    let Some(context) = TraceContext::current() else {
        return false;
    };
    meta.traceparent = Some(context.traceparent);
    meta.tracestate = context.tracestate;
    true
}

/// The trace id of the innermost exported span of `scope`, for log lines.
pub(crate) fn trace_id_in_scope<S>(scope: Option<Scope<'_, S>>) -> Option<TraceId>
where
    S: for<'a> LookupSpan<'a>,
{
    if !enabled() {
        return None;
    }
    scope?.find_map(|span| {
        span.extensions()
            .get::<OtelData>()
            .and_then(OtelData::trace_id)
            .filter(|id| *id != TraceId::INVALID)
    })
}
