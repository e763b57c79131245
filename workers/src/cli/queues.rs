//! `copydesk queues`.

use copydesk::jobs::ALL_QUEUES;
use copydesk::queue::QueueClient;

/// Keys per kind whose `MEMORY USAGE` is asked (the rest are extrapolated).
const MEMORY_SAMPLE: u64 = 50;

/// Prints one row per queue: pending, running, scheduled, dead, oldest age.
pub(super) async fn print(client: &QueueClient, json: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for queue in ALL_QUEUES {
        rows.push((queue, client.depth(queue).await?));
    }
    if json {
        let value: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(queue, d)| {
                (
                    (*queue).to_owned(),
                    serde_json::json!({
                        "pending": d.pending, "running": d.running, "scheduled": d.scheduled,
                        "dead": d.dead, "oldest_age_secs": d.oldest_age_secs,
                    }),
                )
            })
            .collect();
        let memory = copydesk::retention::memory_by_kind(client, MEMORY_SAMPLE).await?;
        let mut value = value;
        value.insert("memory".to_owned(), serde_json::to_value(&memory)?);
        println!("{}", serde_json::Value::Object(value));
        return Ok(());
    }
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "queue", "pending", "running", "scheduled", "dead", "oldest_age"
    );
    for (queue, d) in rows {
        println!(
            "{:<22} {:>9} {:>9} {:>9} {:>9} {:>11.1}s",
            queue, d.pending, d.running, d.scheduled, d.dead, d.oldest_age_secs
        );
    }
    let memory = copydesk::retention::memory_by_kind(client, MEMORY_SAMPLE).await?;
    println!();
    println!(
        "Redis memory of Copydesk's keys by kind (MEMORY USAGE of at most {} keys per kind, extrapolated):",
        memory.sample_per_kind
    );
    println!(
        "{:<22} {:>9} {:>9} {:>14}",
        "kind", "keys", "sampled", "est. bytes"
    );
    for k in &memory.kinds {
        println!(
            "{:<22} {:>9} {:>9} {:>14}",
            k.kind, k.keys, k.sampled, k.estimated_bytes
        );
    }
    println!(
        "{:<22} {:>9} {:>9} {:>14}",
        "total", "", "", memory.total_estimated_bytes
    );
    Ok(())
}
