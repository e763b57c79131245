//! `copydesk dead-letters list|show|retry|purge`.

use clap::Subcommand;
use copydesk::queue::{DeadLetterFilter, DeadLetters, QueueClient};

/// Dead-letter commands.
#[derive(Debug, Subcommand)]
pub(super) enum DeadLetterCommand {
    /// List dead letters, newest first.
    List {
        /// Only this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only errors containing this text.
        #[arg(long)]
        error: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Show one dead letter with its payload.
    Show {
        /// Dead-letter id.
        id: String,
    },
    /// Put dead letters back on their queue (same checks as a live job).
    Retry {
        /// Dead-letter id (or use --all).
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        /// Every dead letter (of --queue, if given).
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// With --all: only this queue.
        #[arg(long, requires = "all")]
        queue: Option<String>,
    },
    /// Delete dead letters.
    Purge {
        /// Dead-letter id (or use --all).
        #[arg(required_unless_present = "all")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

/// Runs one dead-letter command.
pub(super) async fn run(client: &QueueClient, command: DeadLetterCommand) -> anyhow::Result<()> {
    let letters = DeadLetters::new(client);
    match command {
        DeadLetterCommand::List {
            queue,
            error,
            limit,
        } => {
            let list = letters
                .list(&DeadLetterFilter {
                    queue,
                    error_contains: error,
                    limit: Some(limit),
                })
                .await?;
            if list.is_empty() {
                println!("no dead letters");
            }
            for l in list {
                println!(
                    "{}  {:<20} attempts={} redrives={} {} job={}  {}",
                    l.id,
                    l.queue,
                    l.attempts,
                    l.redrives,
                    if l.permanent {
                        "permanent"
                    } else {
                        "retryable"
                    },
                    l.job_id,
                    first_line(&l.error)
                );
            }
        }
        DeadLetterCommand::Show { id } => match letters.get(&id).await? {
            Some(letter) => println!("{}", serde_json::to_string_pretty(&letter)?),
            None => {
                anyhow::bail!("no dead letter {id} (list them with `copydesk dead-letters list`)")
            }
        },
        DeadLetterCommand::Retry { id, all, queue } => {
            if all {
                let n = letters.retry_all(queue.as_deref()).await?;
                println!("re-queued {n} dead letter(s)");
            } else if let Some(id) = id {
                letters.retry(&id).await?;
                println!("re-queued {id}");
            }
        }
        DeadLetterCommand::Purge { id, all } => {
            if all {
                let n = letters.purge_all().await?;
                println!("purged {n} dead letter(s)");
            } else if let Some(id) = id {
                letters.purge(&id).await?;
                println!("purged {id}");
            }
        }
    }
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
