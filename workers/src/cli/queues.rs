//! `copydesk queues`.

use copydesk::jobs::ALL_QUEUES;
use copydesk::queue::QueueClient;

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
    Ok(())
}
