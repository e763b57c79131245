//! `copydesk-demo`: the whole fleet on embedded defaults, offline. Starts a private
//! redis-server, the fake Chatwoot with the demo account (an AN-fittings shop), the ingress and
//! every worker role in this process; sends the seed's three customer messages as signed
//! webhooks; prints each draft (confidence, action, priority, sources) and the private note as
//! Chatwoot received it, then the pending approval queue. Exits when done, or stays up with
//! `--stay-up` (Ctrl-C stops it).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use copydesk::approvals::{ApprovalItem, ApprovalStatus};
use copydesk_testkit::fake_chatwoot::{agent_token, Seed};
use copydesk_testkit::ingress_app::TEST_OPS_TOKEN;
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};

/// Run the Copydesk demo.
#[derive(Debug, Parser)]
#[command(name = "copydesk-demo")]
struct Args {
    /// Keep everything running after the demo (ingress, workers, fake Chatwoot) until Ctrl-C.
    #[arg(long)]
    stay_up: bool,
    /// How long to wait for the drafts.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        copydesk::telemetry::init();
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let seed = Seed::demo();
    let conversations: Vec<i64> = seed
        .conversations
        .iter()
        .map(|c| c.conversation.id)
        .collect();
    let pipeline = Pipeline::start(PipelineOptions {
        seed,
        // The operator console on the ops listener, verifying sign-ins with the fake Chatwoot.
        console_frame_ancestors: Some(Vec::new()),
        // The whole fleet, the reconciliation sweep included.
        roles: copydesk_workers::runtime::Role::all(),
        ..PipelineOptions::default()
    })
    .await?;
    println!("Copydesk demo");
    println!("  redis-server (private)  {}", pipeline.redis.url());
    println!("  fake Chatwoot           {}", pipeline.chatwoot.base_url());
    println!(
        "  ingress                 {}",
        pipeline.ingress.url("/webhooks/chatwoot")
    );
    println!("  workers                 knowledge, drafter, notes, assigner, lifecycle, deadletter (in-process)");
    println!("  knowledge               embedded index over knowledge/ · drafter: extractive (no LLM configured)");
    println!();

    let mut approvals = Vec::new();
    for conversation_id in &conversations {
        for message in pipeline.chatwoot.incoming_messages(*conversation_id) {
            let status = pipeline
                .deliver_message_webhook(*conversation_id, message.id)
                .await;
            println!(
                "→ webhook message_created (conversation {conversation_id}, message {}): HTTP {status}",
                message.id
            );
            approvals.push((
                *conversation_id,
                pipeline.approval_id(*conversation_id, message.id),
            ));
        }
    }
    println!();

    let deadline = Duration::from_secs(args.timeout_secs);
    let mut drafted = Vec::new();
    for (conversation_id, approval_id) in &approvals {
        let Some(item) = pipeline.wait_for_note(approval_id, deadline).await else {
            anyhow::bail!("no draft with a posted note for {approval_id} within {deadline:?}");
        };
        drafted.push((*conversation_id, item));
    }
    // The assigner works next to the notes worker: give it a moment to route everything.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until
        && !conversations.iter().all(|id| {
            pipeline
                .chatwoot
                .conversation(*id)
                .is_some_and(|c| c.team_id.is_some())
        })
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (conversation_id, item) in &drafted {
        print_item(&pipeline, *conversation_id, item);
    }

    let pending = pipeline
        .approvals
        .list(Some(ApprovalStatus::Pending), 0, 50)
        .await?;
    println!("Pending approval queue (urgent first, then oldest):");
    for (n, item) in pending.iter().enumerate() {
        println!(
            "  {}. {:<14} {:<7} {:<9} confidence {:>3}  conversation {}  \"{}\"",
            n + 1,
            item.doc.id,
            item.doc.priority.as_str(),
            item.doc.action.as_str(),
            item.doc.confidence,
            item.doc.conversation_id,
            shorten(&item.doc.customer_message, 50)
        );
    }
    println!();
    println!(
        "Done in {:.1} s. Approve with the ops API or `copydesk approvals approve <id>`.",
        started.elapsed().as_secs_f64()
    );
    if let Some(ops) = pipeline.ingress.ops_addr {
        println!("Operator console: http://localhost:{}/ui/", ops.port());
        println!(
            "  sign in with Maria Lopez's Chatwoot access token (agent):       {}",
            agent_token(2)
        );
        println!(
            "  or Tom Becker's (administrator, may retry/purge dead letters): {}",
            agent_token(5)
        );
        println!(
            "  or the ops token (admin):                                      {TEST_OPS_TOKEN}"
        );
        println!();
    }
    if args.stay_up {
        println!("Staying up (--stay-up); Ctrl-C stops.");
        let _ = tokio::signal::ctrl_c().await;
    }
    pipeline.stop().await
}

fn print_item(pipeline: &Pipeline, conversation_id: i64, item: &ApprovalItem) {
    let doc = &item.doc;
    println!("━━ Conversation {conversation_id} · approval {}", doc.id);
    println!("Customer:   {}", doc.customer_message);
    println!(
        "Draft:      confidence {} · action {} · priority {}{}{}",
        doc.confidence,
        doc.action.as_str(),
        doc.priority.as_str(),
        if doc.vip { " · VIP" } else { "" },
        if doc.safety { " · safety" } else { "" }
    );
    for line in doc.draft.lines() {
        println!("            {line}");
    }
    if doc.sources.is_empty() {
        println!("Sources:    none");
    }
    for (n, source) in doc.sources.iter().enumerate() {
        println!(
            "{}{} ({}, relevance {:.2})",
            if n == 0 {
                "Sources:    "
            } else {
                "            "
            },
            source.title,
            source.source,
            source.relevance
        );
    }
    let note = pipeline
        .chatwoot
        .private_notes(conversation_id)
        .into_iter()
        .find(|m| Some(m.id) == item.note_id);
    match note {
        Some(note) => {
            println!("Private note #{} as Chatwoot stored it:", note.id);
            for line in note.content.unwrap_or_default().lines() {
                println!("  │ {line}");
            }
        }
        None => println!("Private note: not found in the fake Chatwoot"),
    }
    let conversation = pipeline.chatwoot.conversation(conversation_id);
    if let Some(c) = conversation {
        println!(
            "Chatwoot:   status {} · priority {} · assignee {} · team {}",
            c.status.as_str(),
            c.priority.map_or("none", |p| p.as_str()),
            c.assignee_id.map_or("none".to_owned(), |a| a.to_string()),
            c.team_id.map_or("none".to_owned(), |t| t.to_string()),
        );
    }
    println!();
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}
