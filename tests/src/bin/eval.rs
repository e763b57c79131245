//! Draft-quality evaluation: prints figures, asserts nothing.
//!
//! Runs `eval/cases.toml` through the real pipeline code with the knowledge backend and the
//! drafter the environment configures (by default the embedded index over `knowledge/` and
//! the extractive drafter; `COPYDESK_KNOWLEDGE_URL` for a LlamaIndex server,
//! `COPYDESK_LLM_URL` + `COPYDESK_LLM_MODEL` for an OpenAI-compatible model) and prints
//! answer, action and priority accuracy, calibration per confidence band and the number of
//! wrong drafts recommended `send`. With `--learn` it then lets a scripted operator approve
//! or correct every draft, makes the final replies retrievable as "answered before"
//! passages, replays the set and prints before/after.
//!
//! `cargo run -p copydesk-tests --bin eval [-- --cases eval/cases.toml --misses --learn]`

use std::path::PathBuf;

use clap::Parser;
use copydesk::config::ProcessEnv;
use copydesk_testkit::eval;
use copydesk_workers::drafting::{Drafter, DraftingConfig};
use copydesk_workers::knowledge::{KnowledgeBackend, KnowledgeConfig};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Evaluate Copydesk's drafts on the evaluation set and print the figures")]
struct Args {
    /// The case file.
    #[arg(long, default_value_os_t = eval::sample_cases_path())]
    cases: PathBuf,
    /// Also list every case that missed something.
    #[arg(long)]
    misses: bool,
    /// With `--misses`, also print each missed draft's text.
    #[arg(long)]
    text: bool,
    /// Then replay after a scripted operator approved or corrected every draft, with the
    /// operators' final replies retrievable as "answered before" passages.
    #[arg(long)]
    learn: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cases = eval::load(&args.cases)?;
    let knowledge_config = KnowledgeConfig::from_env(&ProcessEnv)?;
    let knowledge = KnowledgeBackend::build(&knowledge_config)?;
    // The set's VIP cases model an attribute the shop's own CRM writes (`vip`): trusted here
    // unless COPYDESK_VIP_ATTRIBUTES says otherwise (nothing is trusted by default).
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    env.entry("COPYDESK_VIP_ATTRIBUTES".into())
        .or_insert_with(|| "vip".into());
    let drafting = DraftingConfig::from_env(&env)?;
    let drafter = Drafter::from_config(&drafting)?;
    drafter.check_backend().await?;
    let label = format!(
        "{} retriever, {:?} drafter",
        match knowledge {
            KnowledgeBackend::Embedded(_) => "embedded",
            KnowledgeBackend::Http(_) => "HTTP",
        },
        drafter.kind()
    );
    let outcomes = eval::run(&cases, &knowledge, &drafter, knowledge_config.top_k).await;
    println!("{}", eval::report(&label, &outcomes));
    if args.misses {
        println!("### Misses\n\n{}", eval::misses(&outcomes, args.text));
    }
    if args.learn {
        let table = eval::learning_replay(
            &cases,
            &outcomes,
            &knowledge,
            &drafter,
            knowledge_config.top_k,
        )
        .await;
        println!("{table}");
    }
    Ok(())
}
