//! `latency-bench`: pipeline latency (webhook received → private note id stored) of the whole
//! fleet in one process (embedded knowledge and drafter, fake Chatwoot, real Redis) at a
//! steady rate, as ratios against baselines measured in the same run on the same machine:
//! the ingress's own answer time (signed webhook → 202, client side) and a bare Redis round
//! trip (`PING`). A benchmark, not a test: it asserts nothing (the test
//! `pipeline::every_message_at_a_steady_rate_gets_its_note` checks that each message is noted).
//!
//! `cargo run -p copydesk-tests --release --bin latency-bench [-- --messages 60 --interval-ms 50]`

use std::time::{Duration, Instant};

use clap::Parser;
use copydesk_testkit::pipeline::{PipelineOptions, STEADY_RATE_TEXTS};

/// Pipeline latency benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Customer messages sent (over the seed's three conversations).
    #[arg(long, default_value_t = 60)]
    messages: usize,
    /// Pause between two messages (50 ms: ~20 messages/s).
    #[arg(long, default_value_t = 50)]
    interval_ms: u64,
    /// Redis round trips measured for the baseline.
    #[arg(long, default_value_t = 1_000)]
    pings: usize,
}

/// The value at quantile `q` of ascending `sorted` (nearest rank below).
fn pct(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.messages > 0 && args.pings > 0, "nothing to measure");
    let p = PipelineOptions::default().start().await;

    // Baseline 1: a bare Redis round trip.
    let client = redis::Client::open(p.redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut pings = Vec::with_capacity(args.pings);
    for _ in 0..args.pings {
        let at = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        pings.push(millis(at.elapsed()));
    }
    let pings = sorted(pings);

    // The load; baseline 2 is each webhook's 202 as the sender sees it.
    let mut accepts = Vec::with_capacity(args.messages);
    let mut ids = Vec::with_capacity(args.messages);
    for n in 0..args.messages {
        let conversation = 101 + (n % 3) as i64;
        let at = Instant::now();
        let (message_id, status) = p
            .customer_writes(conversation, STEADY_RATE_TEXTS[n % STEADY_RATE_TEXTS.len()])
            .await;
        accepts.push(millis(at.elapsed()));
        anyhow::ensure!(status == 202, "webhook {n} answered {status}");
        ids.push(p.approval_id(conversation, message_id));
        // Pacing: customers write at a steady rate.
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    let accepts = sorted(accepts);
    let mut latencies = Vec::with_capacity(ids.len());
    for id in &ids {
        let item = p
            .wait_for_note(id, Duration::from_secs(120))
            .await
            .ok_or_else(|| anyhow::anyhow!("{id}: no note within 120 s"))?;
        let posted = item
            .note_posted_at_ms
            .ok_or_else(|| anyhow::anyhow!("{id}: note time missing"))?;
        latencies.push((posted - item.doc.received_at_ms) as f64);
    }
    let latencies = sorted(latencies);
    p.stop().await?;

    let rate = 1_000.0 / args.interval_ms.max(1) as f64;
    println!(
        "{} messages at ~{rate:.0}/s over 3 conversations, embedded backends, debug={}",
        args.messages,
        cfg!(debug_assertions)
    );
    println!(
        "baseline  redis PING        p50 {:>8.3} ms  p95 {:>8.3} ms",
        pct(&pings, 0.5),
        pct(&pings, 0.95)
    );
    println!(
        "baseline  ingress 202       p50 {:>8.3} ms  p95 {:>8.3} ms",
        pct(&accepts, 0.5),
        pct(&accepts, 0.95)
    );
    println!(
        "pipeline  received → note   p50 {:>8.1} ms  p95 {:>8.1} ms  max {:.1} ms",
        pct(&latencies, 0.5),
        pct(&latencies, 0.95),
        latencies[latencies.len() - 1]
    );
    for (name, base) in [("ingress 202", &accepts), ("redis PING", &pings)] {
        println!(
            "pipeline / {name:<11}    p50 ×{:.0}  p95 ×{:.0}",
            pct(&latencies, 0.5) / pct(base, 0.5).max(f64::EPSILON),
            pct(&latencies, 0.95) / pct(base, 0.95).max(f64::EPSILON)
        );
    }
    Ok(())
}
