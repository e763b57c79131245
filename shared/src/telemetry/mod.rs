//! Tracing setup: `RUST_LOG` filters (default `info`), `COPYDESK_LOG_FORMAT=json` for
//! machine-readable logs, and optional OpenTelemetry trace export (see [`otel`]): when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, spans go out
//! over OTLP/HTTP and every log line written inside a span carries its `trace_id`.

pub mod otel;

use std::io::IsTerminal as _;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;

pub use otel::{job_span, stamp_trace_context, TraceContext, Traces};

/// Installs the global subscriber (logs only, no trace export) once; later calls do nothing
/// (tests and tools call it freely).
pub fn init() {
    let _ = install(None);
}

/// Installs the global subscriber of a service process: logs, plus trace export when an
/// OTLP endpoint is configured (`default_service_name` is `service.name` unless
/// `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names one). Keep the returned guard
/// until the process exits: dropping it flushes and shuts the exporter down.
pub fn init_service(default_service_name: &str) -> Traces {
    let mut traces = match otel::Traces::from_env(default_service_name) {
        Ok(traces) => traces,
        Err(error) => {
            eprintln!("warning: OpenTelemetry export disabled: {error:#}");
            Traces::off()
        }
    };
    if install(traces.take_layer()).is_err() {
        // A subscriber was installed before: its spans are not exported, so neither is this.
        return Traces::off();
    }
    traces
}

/// Installs the subscriber with the optional OpenTelemetry layer.
fn install(otel: Option<otel::Layer>) -> Result<(), tracing_subscriber::util::TryInitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("COPYDESK_LOG_FORMAT").is_ok_and(|v| v == "json");
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json {
        fmt.event_format(WithTraceId::json(Format::default().json()))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .boxed()
    } else {
        let ansi = std::io::stderr().is_terminal();
        fmt.with_ansi(ansi)
            .event_format(WithTraceId::text(Format::default().with_ansi(ansi)))
            .boxed()
    };
    tracing_subscriber::registry()
        .with(otel.map(|layer| layer.with_filter(otel::span_filter())))
        .with(fmt.with_filter(filter))
        .try_init()
}

/// An event format that adds the current span's `trace_id` to each line: the first field of
/// a JSON object, the last `key=value` of a text line. Lines outside a traced span are as
/// the inner format writes them.
struct WithTraceId<F> {
    inner: F,
    json: bool,
}

impl<F> WithTraceId<F> {
    fn json(inner: F) -> Self {
        Self { inner, json: true }
    }

    fn text(inner: F) -> Self {
        Self { inner, json: false }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(trace_id) = otel::trace_id_in_scope(ctx.event_scope()) else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        if self.json {
            match line.strip_prefix('{') {
                Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",{rest}"),
                None => writer.write_str(&line),
            }
        } else {
            let body = line.trim_end_matches('\n');
            writeln!(writer, "{body} trace_id={trace_id}")
        }
    }
}
