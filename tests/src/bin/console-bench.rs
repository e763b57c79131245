//! `console-bench`: how long the operator console's queue page takes to render server-side
//! with 5 000 pending drafts (issue 8 asks for under 50 ms), against a baseline of 3 drafts
//! measured in the same run, and the filtered views (text search, team and action filters)
//! as ratios to the 5 000-pending page of the same run. Real ingress, real Redis, over
//! loopback HTTP; prints medians and ratios. A benchmark, not a test: it asserts nothing.
//!
//! `cargo run --release -p copydesk-tests --bin console-bench [-- --drafts 5000 --rounds 40]`

use std::time::{Duration, Instant};

use clap::Parser;
use copydesk::approvals::{now_ms, Action, ApprovalStore, DraftDoc, Priority, SourceRef};
use copydesk_ingress::console::ConsoleConfig;
use copydesk_testkit::ingress_app::{
    spawn_ingress_with, test_config, unique_prefix, with_ops, TEST_OPS_TOKEN,
};
use copydesk_testkit::redis_server::RedisServer;

/// Queue-page benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Pending drafts in the big queue.
    #[arg(long, default_value_t = 5_000)]
    drafts: usize,
    /// Page loads measured per queue size.
    #[arg(long, default_value_t = 40)]
    rounds: usize,
}

fn doc(n: usize) -> DraftDoc {
    let priority = [
        Priority::Urgent,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ][n % 4];
    DraftDoc {
        id: ApprovalStore::approval_id(1, 10_000 + n as i64, 1),
        account_id: 1,
        conversation_id: 10_000 + n as i64,
        message_id: 1,
        customer_message: format!(
            "Customer {n}: which AN-6 fitting fits a 3/8 inch fuel line? <b>thanks</b>"
        ),
        draft: "Use an AN-6 fitting for a 3/8 inch line; see the sizing chart.".into(),
        confidence: (n % 100) as u8,
        action: [Action::Send, Action::Review, Action::Escalate][n % 3],
        priority,
        sentiment: "neutral".into(),
        sources: vec![SourceRef {
            source: "sizing.md".into(),
            title: "AN sizes".into(),
            relevance: 0.8,
        }],
        degraded: Vec::new(),
        placeholder: false,
        safety: n.is_multiple_of(17),
        vip: n.is_multiple_of(11),
        suspicious: Vec::new(),
        drafter: "extractive".into(),
        delivery_id: format!("bench-{n}"),
        received_at_ms: now_ms(),
        created_at_ms: now_ms() - (n as i64) * 1000,
        traceparent: None,
        tracestate: None,
    }
}

async fn median_ms(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
    rounds: usize,
) -> anyhow::Result<f64> {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let response = http.get(url).header("cookie", cookie).send().await?;
        anyhow::ensure!(
            response.status() == 200,
            "queue page answered {}",
            response.status()
        );
        let _ = response.bytes().await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(samples[samples.len() / 2].as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let redis = RedisServer::start();
    let prefix = unique_prefix("console-bench");
    let mut config = with_ops(test_config(&redis.url(), &prefix));
    if let Some(ops) = config.ops.as_mut() {
        ops.console = Some(ConsoleConfig::new("http://chatwoot.invalid", 1));
    }
    let ingress = spawn_ingress_with(config).await;
    let ops = ingress
        .ops_addr
        .ok_or_else(|| anyhow::anyhow!("no ops listener"))?;
    let base = format!("http://{ops}");
    let queue = copydesk::queue::QueueClient::build(&redis.redis_config(&prefix)).await?;
    let store = ApprovalStore::for_queue(&queue);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let signin = http
        .post(format!("{base}/ui/signin"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", TEST_OPS_TOKEN), ("next", "/ui/")])
        .send()
        .await?;
    let cookie = signin
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .ok_or_else(|| anyhow::anyhow!("sign-in set no cookie"))?
        .to_owned();

    for n in 0..3 {
        store.create(&doc(n)).await?;
    }
    let url = format!("{base}/ui/");
    let _ = median_ms(&http, &url, &cookie, 3).await?; // warm-up
    let small = median_ms(&http, &url, &cookie, args.rounds).await?;
    for n in 3..args.drafts {
        store.create(&doc(n)).await?;
    }
    let pending = store.pending_count().await?;
    let big = median_ms(&http, &url, &cookie, args.rounds).await?;
    let last_page = format!("{base}/ui/?page={}", (pending as usize).div_ceil(50));
    let deep = median_ms(&http, &last_page, &cookie, args.rounds).await?;
    // The first filtered request fills the console's filter index (every pending draft read
    // once); later ones only bring it up to date.
    let search_url = format!("{base}/ui/?q=customer+4999&priority=low");
    let started = Instant::now();
    let _ = median_ms(&http, &search_url, &cookie, 1).await?;
    let first_search = started.elapsed().as_secs_f64() * 1000.0;
    let search = median_ms(&http, &search_url, &cookie, args.rounds).await?;
    let broad = median_ms(
        &http,
        &format!("{base}/ui/?q=fitting"),
        &cookie,
        args.rounds,
    )
    .await?;
    let team = median_ms(
        &http,
        &format!("{base}/ui/?team=none&action=review"),
        &cookie,
        args.rounds,
    )
    .await?;
    println!(
        "console queue page, median of {} loads (server render + loopback HTTP):",
        args.rounds
    );
    println!("  3 pending (baseline)        {small:7.2} ms");
    println!(
        "  {pending} pending, page 1       {big:7.2} ms   ratio {:.2}x baseline",
        big / small
    );
    println!(
        "  {pending} pending, last page    {deep:7.2} ms   ratio {:.2}x baseline",
        deep / small
    );
    println!("text search and filters at {pending} pending, as ratios to page 1 ({big:.2} ms) of this run:");
    println!(
        "  first filtered load (fills the index) {first_search:7.2} ms   ratio {:.2}x page 1",
        first_search / big
    );
    println!(
        "  search, one match                     {search:7.2} ms   ratio {:.2}x page 1",
        search / big
    );
    println!(
        "  search, every draft matches           {broad:7.2} ms   ratio {:.2}x page 1",
        broad / big
    );
    println!(
        "  team + action filter                  {team:7.2} ms   ratio {:.2}x page 1",
        team / big
    );
    ingress.stop().await;
    Ok(())
}
