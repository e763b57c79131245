//! The `copydesk` command line and the `copydesk-<role>` entry points.
//!
//! - `copydesk run --all | --role R …`: worker roles in one process.
//! - `copydesk queues`: depth, running, scheduled, dead and oldest-job age per queue.
//! - `copydesk dead-letters list|show|retry|purge`.
//! - `copydesk approvals list|show|approve|edit|reject|escalate`.
//! - `copydesk learning export --since … [--output FILE]`.
//! - `copydesk dashboard-app install --url URL`: the console as a Chatwoot Dashboard App.
//! - `copydesk reconcile [--since 2h] [--dry-run] [--report]`: one reconciliation pass by hand.

mod approvals;
pub mod dashboard_app;
mod dead_letters;
mod learning;
mod queues;
mod reconcile;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use copydesk::config::{ProcessEnv, RedisConfig};
use copydesk::queue::QueueClient;

use crate::runtime::Role;

/// Copydesk operations.
#[derive(Debug, Parser)]
#[command(
    name = "copydesk",
    version,
    about = "Copydesk: reviewed AI reply drafts for Chatwoot"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run worker roles in this process until SIGTERM.
    Run {
        /// Every role.
        #[arg(long, conflicts_with = "role")]
        all: bool,
        /// A role (repeatable), e.g. `notes`; an unknown name is answered with the list.
        #[arg(long = "role", value_parser = parse_role)]
        role: Vec<Role>,
    },
    /// Depth, running, scheduled, dead and oldest-job age per queue.
    Queues {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspect and replay jobs whose retries are spent.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(dead_letters::DeadLetterCommand),
    /// Review approval items without a UI.
    #[command(subcommand)]
    Approvals(approvals::ApprovalCommand),
    /// Learning data from operators' decisions.
    #[command(subcommand)]
    Learning(LearningCommand),
    /// Register the operator console as a Chatwoot Dashboard App.
    #[command(subcommand, name = "dashboard-app")]
    DashboardApp(dashboard_app::DashboardAppCommand),
    /// Run one reconciliation pass now and print what it found (webhooks Chatwoot never
    /// delivered), or print the latest passes and missed messages.
    Reconcile {
        /// Scan from this time instead of each account's watermark: a duration back from now
        /// (2h, 1d), Unix ms or an RFC 3339 time.
        #[arg(long, value_parser = learning::parse_since, conflicts_with = "report")]
        since: Option<i64>,
        /// Print what would be fed, enqueue and record nothing.
        #[arg(long, conflicts_with = "report")]
        dry_run: bool,
        /// Print the latest passes and the missed customer messages (no pass is run).
        #[arg(long)]
        report: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete one conversation's data everywhere (data-protection requests).
    Erase {
        /// The conversation as `ACCOUNT:CONVERSATION`, e.g. `1:42`.
        #[arg(long, value_parser = parse_conversation)]
        conversation: (i64, i64),
        /// Print what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Erase even while a reply of the conversation is not sent yet (it is then never sent).
        #[arg(long)]
        force: bool,
    },
}

fn parse_conversation(s: &str) -> Result<(i64, i64), String> {
    let (a, c) = s
        .split_once(':')
        .ok_or_else(|| format!("expected ACCOUNT:CONVERSATION, got {s:?}"))?;
    let number = |t: &str| {
        t.trim()
            .parse::<i64>()
            .map_err(|_| format!("{t:?} is not a whole number (expected ACCOUNT:CONVERSATION)"))
    };
    Ok((number(a)?, number(c)?))
}

async fn erase(
    client: &QueueClient,
    (account, conversation): (i64, i64),
    dry_run: bool,
    force: bool,
) -> anyhow::Result<()> {
    let report =
        copydesk::retention::erase_conversation(client, account, conversation, dry_run, force)
            .await?;
    let verb = if dry_run { "would remove" } else { "removed" };
    println!(
        "{verb} conversation {account}:{conversation}: {} approval(s), {} key(s), {} index member(s), {} stream entr(ies), {} dead letter(s)",
        report.approvals.len(),
        report.keys.len(),
        report.members.len(),
        report.entries.len(),
        report.dead_letters.len()
    );
    for line in report
        .keys
        .iter()
        .map(|k| format!("key {k}"))
        .chain(report.members.iter().map(|m| format!("member {m}")))
        .chain(report.entries.iter().map(|e| format!("entry {e}")))
        .chain(
            report
                .dead_letters
                .iter()
                .map(|d| format!("dead letter {d}")),
        )
    {
        println!("  {line}");
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
enum LearningCommand {
    /// Write the records as JSON Lines.
    Export {
        /// Unix ms, an RFC 3339 time, or a duration back from now (24h, 7d).
        #[arg(long, value_parser = learning::parse_since, default_value = "0")]
        since: i64,
        /// Write to this file instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: crate::runtime::UnknownRole| e.to_string())
}

/// Entry point of `copydesk`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `copydesk run --role R` (one role) names its traces like the role's binary.
    let service = match &cli.command {
        Command::Run { all: false, role } if role.len() == 1 => format!("copydesk-{}", role[0]),
        _ => "copydesk".to_owned(),
    };
    let _traces = copydesk::telemetry::init_service(&service);
    block_on(async move { dispatch(cli).await })
}

/// Entry point of the `copydesk-<role>` binary named `binary`.
pub fn binary_main(binary: &str) -> ExitCode {
    let name = binary.strip_prefix("copydesk-").unwrap_or(binary);
    match name.parse::<Role>() {
        Ok(role) => role_main(role),
        Err(error) => {
            eprintln!("error: binary {binary}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Entry point of a role's process.
pub fn role_main(role: Role) -> ExitCode {
    let _traces = copydesk::telemetry::init_service(&format!("copydesk-{role}"));
    block_on(async move {
        let shutdown = copydesk::shutdown::signal_token();
        crate::runtime::run(&[role], &ProcessEnv, shutdown).await
    })
}

fn block_on(future: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { all, role } => {
            let roles = if all { Role::all() } else { role };
            if roles.is_empty() {
                anyhow::bail!("say which roles to run: --all, or --role <name> (repeatable)");
            }
            let shutdown = copydesk::shutdown::signal_token();
            crate::runtime::run(&roles, &ProcessEnv, shutdown).await
        }
        Command::Queues { json } => queues::print(&queue_client().await?, json).await,
        Command::Erase {
            conversation,
            dry_run,
            force,
        } => erase(&queue_client().await?, conversation, dry_run, force).await,
        Command::DeadLetters(command) => dead_letters::run(&queue_client().await?, command).await,
        Command::Approvals(command) => approvals::run(&queue_client().await?, command).await,
        Command::Reconcile {
            since,
            dry_run,
            report,
            json,
        } => reconcile::run(&queue_client().await?, since, dry_run, report, json).await,
        Command::DashboardApp(command) => dashboard_app::run(&ProcessEnv, command).await,
        Command::Learning(LearningCommand::Export { since, output }) => {
            let n = learning::export(&queue_client().await?, since, output.as_deref()).await?;
            eprintln!("exported {n} learning record(s)");
            Ok(())
        }
    }
}

/// The queue client from `REDIS_URL` / `COPYDESK_KEY_PREFIX`.
async fn queue_client() -> anyhow::Result<QueueClient> {
    let config = RedisConfig::from_env(&ProcessEnv)?;
    let client = QueueClient::build(&config)
        .await
        .with_context(|| format!("connecting to Redis at {}", config.redacted_url()))?;
    client.ping().await.with_context(|| {
        format!(
            "Redis at {} does not answer: {}",
            config.redacted_url(),
            config.connect_hint()
        )
    })?;
    Ok(client)
}
