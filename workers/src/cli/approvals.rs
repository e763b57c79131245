//! `copydesk approvals list|show|approve|edit|reject|escalate`: the ops API's approval actions
//! for ops without a UI (same checks, same follow-up jobs: [`copydesk::operator`]).

use clap::Subcommand;
use copydesk::approvals::{ApprovalItem, ApprovalStatus, Decision};
use copydesk::operator::{DecisionOutcome, Operator};
use copydesk::queue::QueueClient;

/// Largest `--offset` of `approvals list`.
const MAX_OFFSET: i64 = 1_000_000;

/// Approval commands.
#[derive(Debug, Subcommand)]
pub(super) enum ApprovalCommand {
    /// List items: pending ones urgent first then oldest; other statuses newest first.
    List {
        /// pending, approved, edited, rejected, escalated, superseded, sent, held_back, or all.
        #[arg(long, default_value = "pending")]
        status: String,
        /// Skip this many (at most 1 000 000).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(..=MAX_OFFSET))]
        offset: u32,
        /// At most this many (1–500).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
    },
    /// Show one item as JSON.
    Show {
        /// Approval id.
        id: String,
    },
    /// Send the draft as is.
    Approve {
        /// Approval id.
        id: String,
        /// Who decides.
        #[arg(long)]
        operator: String,
    },
    /// Send an edited text.
    Edit {
        /// Approval id.
        id: String,
        /// Who decides.
        #[arg(long)]
        operator: String,
        /// The text to send.
        #[arg(long)]
        content: String,
    },
    /// Do not send the draft; optionally send your own reply.
    Reject {
        /// Approval id.
        id: String,
        /// Who decides.
        #[arg(long)]
        operator: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Your reply to the customer, if any.
        #[arg(long)]
        reply: Option<String>,
    },
    /// Hand the conversation to a team with a private note.
    Escalate {
        /// Approval id.
        id: String,
        /// Who decides.
        #[arg(long)]
        operator: String,
        /// Team name as in the routing file.
        #[arg(long)]
        team: String,
        /// Note for the team.
        #[arg(long)]
        note: String,
    },
}

/// Runs one approval command.
pub(super) async fn run(client: &QueueClient, command: ApprovalCommand) -> anyhow::Result<()> {
    let operator = Operator::new(client.clone());
    let (id, decision) = match command {
        ApprovalCommand::List {
            status,
            offset,
            limit,
        } => {
            let status = match status.as_str() {
                "all" => None,
                other => Some(
                    other
                        .parse::<ApprovalStatus>()
                        .map_err(anyhow::Error::msg)?,
                ),
            };
            let items = operator
                .approvals()
                .list(status, offset as usize, limit as usize)
                .await?;
            if items.is_empty() {
                println!("no approval items");
            }
            for item in items {
                println!("{}", summary(&item));
            }
            return Ok(());
        }
        ApprovalCommand::Show { id } => {
            let item = operator
                .approvals()
                .get(&id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no approval item {id}"))?;
            println!("{}", serde_json::to_string_pretty(&item)?);
            return Ok(());
        }
        ApprovalCommand::Approve { id, operator } => (id, Decision::Approve { operator }),
        ApprovalCommand::Edit {
            id,
            operator,
            content,
        } => (id, Decision::Edit { operator, content }),
        ApprovalCommand::Reject {
            id,
            operator,
            reason,
            reply,
        } => (
            id,
            Decision::Reject {
                operator,
                reason,
                reply,
            },
        ),
        ApprovalCommand::Escalate {
            id,
            operator,
            team,
            note,
        } => (
            id,
            Decision::Escalate {
                operator,
                team,
                note,
            },
        ),
    };
    let required = [("--operator", decision.operator())];
    for (flag, value) in required {
        if value.trim().is_empty() {
            anyhow::bail!("{flag} must not be empty");
        }
    }
    match operator.decide(&id, decision).await? {
        DecisionOutcome::Applied(item) => {
            println!("{}", summary(&item));
            Ok(())
        }
        DecisionOutcome::Conflict(status) => anyhow::bail!(
            "approval {id} is no longer pending (it is {})",
            status.as_str()
        ),
        DecisionOutcome::NotFound => anyhow::bail!("no approval item {id}"),
        DecisionOutcome::UnusableDraft => anyhow::bail!(
            "approval {id} has no usable draft to send; use `edit` with your own text or `reject`"
        ),
    }
}

fn summary(item: &ApprovalItem) -> String {
    let doc = &item.doc;
    format!(
        "{:<16} {:<10} {:<7} {:<8} confidence {:>3}  conversation {}  {}",
        doc.id,
        item.status.as_str(),
        doc.priority.as_str(),
        doc.action.as_str(),
        doc.confidence,
        doc.conversation_id,
        doc.customer_message.chars().take(60).collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::ApprovalCommand;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ApprovalCommand,
    }

    #[test]
    fn huge_offsets_and_limits_are_clear_errors() {
        for args in [
            ["t", "list", "--offset", "18446744073709551615"],
            ["t", "list", "--offset", "1000001"],
            ["t", "list", "--offset=-1", "--limit=5"],
            ["t", "list", "--limit", "0"],
        ] {
            let err = Cli::try_parse_from(args).expect_err("out of range");
            let text = err.to_string();
            assert!(
                text.contains("--offset") || text.contains("--limit"),
                "{text}"
            );
        }
        let ok = Cli::try_parse_from(["t", "list", "--offset", "1000000"]).expect("in range");
        assert!(matches!(
            ok.command,
            ApprovalCommand::List {
                offset: 1_000_000,
                ..
            }
        ));
    }
}
