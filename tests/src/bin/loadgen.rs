//! Load generator for the ingress: prints figures, asserts nothing.
//!
//! Starts a private `redis-server` and an in-process ingress (or drives `--url`), then, at
//! each concurrency level for `--duration` seconds, posts webhooks signed like Chatwoot's
//! with unique message and delivery ids. It reports accepted/s, p50/p99/max latency, errors
//! and the jobs found in Redis afterwards, and compares the ingress with two limits measured
//! in the same run: a bare hyper server answering 200 to the same requests (the HTTP limit)
//! and `redis-benchmark -t lpush` with the job payload size (the queue limit).
//!
//! `cargo run --release -p copydesk-tests --bin loadgen -- --duration 5`

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use copydesk::event::{route, Route, WebhookEvent};
use copydesk_testkit::ingress_app::{spawn_ingress, unique_prefix, TEST_SECRET};
use copydesk_testkit::webhook::{
    chatwoot_json, incoming_message, new_delivery_id, unix_now, WebhookSender,
};
use copydesk_testkit::RedisServer;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    about = "Drive the Copydesk ingress with signed webhooks and print throughput and latency"
)]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent connections, one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "8,64")]
    concurrency: Vec<usize>,
    /// Drive an ingress that is already running (its webhook URL) instead of an in-process one;
    /// the Redis and HTTP-limit comparisons are skipped.
    #[arg(long)]
    url: Option<String>,
    /// Secret to sign with when using --url.
    #[arg(long, default_value = TEST_SECRET)]
    secret: String,
}

/// What one measurement saw.
#[derive(Debug, Default)]
struct Run {
    accepted: u64,
    errors: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }

    fn line(&self, label: &str, concurrency: usize) -> String {
        format!(
            "{label:<8} c={concurrency:<3} accepted/s {:>8.0}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  errors {}",
            self.per_sec(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors,
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Posts unique signed webhooks from `concurrency` tasks for `duration`; `accepted` counts
/// responses with status `expect`.
async fn drive(
    sender: &WebhookSender,
    concurrency: usize,
    duration: Duration,
    expect: u16,
    ids: &Arc<AtomicI64>,
) -> Run {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let sender = sender.clone();
            let ids = Arc::clone(ids);
            tokio::spawn(async move {
                let mut run = Run::default();
                while Instant::now() < deadline {
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    let body = chatwoot_json(&incoming_message(
                        id,
                        1000 + id % 997,
                        "Where is my refund?",
                    ));
                    let sent_at = Instant::now();
                    let result = sender
                        .signed(body, &new_delivery_id(), unix_now())
                        .send()
                        .await;
                    let status = match result {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let _ = response.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                    run.latencies.push(sent_at.elapsed());
                    if status == expect {
                        run.accepted += 1;
                    } else {
                        run.errors += 1;
                    }
                }
                run
            })
        })
        .collect();
    let mut total = Run::default();
    for task in tasks {
        if let Ok(run) = task.await {
            total.accepted += run.accepted;
            total.errors += run.errors;
            total.latencies.extend(run.latencies);
        }
    }
    total.elapsed = started.elapsed();
    total.latencies.sort_unstable();
    total
}

/// A bare hyper server that reads the body and answers 200: the HTTP stack's own limit.
async fn spawn_bare_server() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(
                    |request: hyper::Request<hyper::body::Incoming>| async move {
                        let _ = request.into_body().collect().await;
                        let mut response = hyper::Response::new(Full::new(Bytes::from_static(
                            br#"{"status":"ok"}"#,
                        )));
                        response.headers_mut().insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(response)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// `redis-benchmark -t lpush -d {size} -c {concurrency}`: LPUSH requests per second.
fn redis_benchmark(port: u16, size: usize, concurrency: usize) -> anyhow::Result<f64> {
    let output = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "lpush",
            "-q",
            "-n",
            "200000",
        ])
        .args(["-d", &size.to_string(), "-c", &concurrency.to_string()])
        .output()
        .context("running redis-benchmark (apt-get install -y redis-tools)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    // Output ends like "LPUSH: 123456.79 requests per second, p50=0.215 msec"; progress lines
    // before it are separated by carriage returns.
    let last = text
        .rsplit(['\r', '\n'])
        .find(|l| l.contains("requests per second"))
        .unwrap_or_default();
    last.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unexpected redis-benchmark output: {text:?}"))
}

/// Size in bytes of the jobs one customer message enqueues (what Redis stores per webhook).
fn job_payload_size() -> anyhow::Result<usize> {
    let body = chatwoot_json(&incoming_message(1, 1, "Where is my refund?"));
    let event = WebhookEvent::parse(&body)?;
    match route(&event, &new_delivery_id().parse()?, 0)? {
        Route::Enqueue { jobs, .. } => Ok(jobs.iter().map(|j| j.payload.len()).sum()),
        Route::Ignore(reason) => anyhow::bail!("sample message was ignored: {reason}"),
    }
}

async fn stream_len(redis_url: &str, key: &str) -> anyhow::Result<u64> {
    let mut conn = redis::Client::open(redis_url)?
        .get_multiplexed_async_connection()
        .await?;
    Ok(redis::cmd("XLEN").arg(key).query_async(&mut conn).await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let duration = Duration::from_secs(args.duration);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let ids = Arc::new(AtomicI64::new(1_000_000));
    let body_size = chatwoot_json(&incoming_message(1_000_000, 1000, "Where is my refund?")).len();
    println!(
        "loadgen: {} s per run, concurrency {:?}, webhook body ~{body_size} B, {} CPUs",
        args.duration,
        args.concurrency,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    if let Some(url) = args.url {
        let sender = WebhookSender::new(http, url, args.secret);
        for &c in &args.concurrency {
            println!(
                "{}",
                drive(&sender, c, duration, 202, &ids)
                    .await
                    .line("ingress", c)
            );
        }
        return Ok(());
    }

    let redis = RedisServer::start();
    let prefix = unique_prefix("loadgen");
    let app = spawn_ingress(&redis.url(), &prefix).await;
    let ingress = WebhookSender::new(http.clone(), app.url("/webhooks/chatwoot"), TEST_SECRET);
    let bare = WebhookSender::new(
        http,
        format!("http://{}/", spawn_bare_server().await?),
        TEST_SECRET,
    );
    let stream = copydesk::queue::Keys::new(prefix).stream("lookup_knowledge");
    let job_size = job_payload_size()?;

    for &c in &args.concurrency {
        let before = stream_len(&redis.url(), &stream).await?;
        let ingress_run = drive(&ingress, c, duration, 202, &ids).await;
        let jobs = stream_len(&redis.url(), &stream).await? - before;
        let bare_run = drive(&bare, c, duration, 200, &ids).await;
        let lpush = redis_benchmark(redis.port(), job_size, c)?;
        println!(
            "{}  jobs in redis {jobs} (202s {})",
            ingress_run.line("ingress", c),
            ingress_run.accepted
        );
        println!("{}", bare_run.line("bare", c));
        println!("redis    c={c:<3} LPUSH -d {job_size}: {lpush:>8.0} ops/s");
        println!(
            "ratio    c={c:<3} ingress/bare-hyper {:.2}   ingress/redis-lpush {:.2}",
            ingress_run.per_sec() / bare_run.per_sec().max(f64::MIN_POSITIVE),
            ingress_run.per_sec() / lpush.max(f64::MIN_POSITIVE),
        );
    }
    drop(app);
    Ok(())
}
