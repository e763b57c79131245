//! `copydesk dashboard-app install --url URL [--title TITLE]`: registers the operator console
//! as a Chatwoot Dashboard App (a tab in every conversation) through
//! `POST /api/v1/accounts/{id}/dashboard_apps` with
//! `{"dashboard_app":{"title","content":[{"type":"frame","url"}]}}`. Uses `CHATWOOT_BASE_URL`,
//! `CHATWOOT_ACCOUNT_ID` and `CHATWOOT_API_TOKEN`, which must be an administrator's token.

use anyhow::Context as _;
use clap::Subcommand;
use copydesk::chatwoot::ChatwootConfig;
use copydesk::config::EnvSource;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// `copydesk dashboard-app …`.
#[derive(Debug, Subcommand)]
pub enum DashboardAppCommand {
    /// Register the console's `/ui/conversation` as a Dashboard App.
    Install {
        /// The console's Dashboard App URL, e.g. `https://copydesk.example.com/ui/conversation`.
        #[arg(long)]
        url: String,
        /// The tab's title in Chatwoot.
        #[arg(long, default_value = "Copydesk")]
        title: String,
    },
}

/// Runs the command; prints the created app's id.
pub async fn run(env: &dyn EnvSource, command: DashboardAppCommand) -> anyhow::Result<()> {
    let DashboardAppCommand::Install { url, title } = command;
    let id = install(&ChatwootConfig::from_env(env)?, &url, &title).await?;
    println!("dashboard app {id} installed: {url}");
    Ok(())
}

/// Creates the Dashboard App; returns its id.
pub async fn install(config: &ChatwootConfig, url: &str, title: &str) -> anyhow::Result<i64> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        anyhow::bail!("--url {url:?} must be an http(s) URL");
    }
    if title.trim().is_empty() {
        anyhow::bail!("--title must not be empty");
    }
    let endpoint = format!(
        "{}/api/v1/accounts/{}/dashboard_apps",
        config.base_url.trim_end_matches('/'),
        config.account_id
    );
    let body =
        json!({"dashboard_app": {"title": title, "content": [{"type": "frame", "url": url}]}});
    let response = reqwest::Client::builder()
        .timeout(config.timeout)
        .build()?
        .post(&endpoint)
        .header("api_access_token", config.api_token.expose_secret())
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {endpoint}"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    match status.as_u16() {
        200..=299 => answer
            .get("id")
            .and_then(Value::as_i64)
            .with_context(|| format!("Chatwoot answered {status} without an app id: {answer}")),
        401 | 403 => anyhow::bail!(
            "Chatwoot refused ({status}): creating a Dashboard App needs an administrator's \
             access token in CHATWOOT_API_TOKEN ({answer})"
        ),
        _ => anyhow::bail!("Chatwoot answered {status}: {answer}"),
    }
}
