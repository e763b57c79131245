//! A process that consumes the `post_note` queue with the Streams backend and records each
//! processed job id in Redis (`RPUSH {prefix}:processed <job id>`), so a test can SIGKILL it
//! while it holds claimed jobs and check that another consumer finishes them.

use std::time::Duration;

use clap::Parser;
use copydesk::config::RedisConfig;
use copydesk::jobs::PostNote;
use copydesk::queue::{run_worker, JobAttempt, JobError, QueueClient, QueueSettings};
use redis::AsyncCommands;

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// Redis URL.
    #[arg(long)]
    redis_url: String,
    /// Key prefix.
    #[arg(long)]
    prefix: String,
    /// Consumer name in the group.
    #[arg(long)]
    consumer: String,
    /// Visibility timeout in ms.
    #[arg(long, default_value_t = 2000)]
    visibility_ms: u64,
    /// Time each job takes, in ms.
    #[arg(long, default_value_t = 100)]
    handler_ms: u64,
    /// Slots.
    #[arg(long, default_value_t = 32)]
    max_in_flight: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = RedisConfig {
        url: args.redis_url.clone(),
        key_prefix: args.prefix.clone(),
        retention: copydesk::retention::DEFAULT_RETENTION,
        ca_file: None,
    };
    let client = QueueClient::build(&config).await?;
    let settings = QueueSettings {
        visibility_timeout: Duration::from_millis(args.visibility_ms),
        block: Duration::from_millis(200),
        reclaim_interval: Duration::from_millis(200),
        max_in_flight: args.max_in_flight,
        maintenance_interval: Duration::from_millis(50),
        consumer_name: Some(args.consumer.clone()),
        ..QueueSettings::default()
    };
    let processed = client.keys().scratch("processed");
    let conn = client.connection();
    let pause = Duration::from_millis(args.handler_ms);
    let handler = move |job: PostNote, _attempt: JobAttempt| {
        let mut conn = conn.clone();
        let processed = processed.clone();
        async move {
            tokio::time::sleep(pause).await;
            let _: i64 = conn
                .rpush(&processed, &job.approval_id)
                .await
                .map_err(JobError::retryable)?;
            Ok(())
        }
    };
    let shutdown = copydesk::shutdown::signal_token();
    println!("ready");
    run_worker::<PostNote, _, _>(client, settings, handler, shutdown).await?;
    Ok(())
}
