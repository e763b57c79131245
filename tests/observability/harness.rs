//! The observability test's world: the fleet as separate processes (the ingress and one
//! `copydesk-fleet run --role R` per worker role, each with its own metrics port) and Debian's
//! `prometheus` server scraping them every second with deploy/prometheus's scrape job and
//! rules, queried through its HTTP API.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use copydesk_testkit::fake_chatwoot::seed::DEMO_WEB_INBOX;
use copydesk_testkit::fake_chatwoot::FakeConversation;
use copydesk_testkit::ingress_app::{TEST_OPS_TOKEN, TEST_SECRET};
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_testkit::process::{quiet_command, role_command, TestProcess};
use copydesk_testkit::redis_server::free_port;
use serde_json::{json, Value};

/// The repository's deploy/ directory.
pub(crate) fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy")
}

/// A fleet process the test started, with its metrics port; killed when dropped.
pub(crate) struct Proc {
    pub(crate) role: &'static str,
    pub(crate) metrics_port: u16,
    process: TestProcess,
}

impl Proc {
    /// Starts `command` with its metrics on `metrics_port`.
    fn spawn(role: &'static str, metrics_port: u16, command: &mut Command) -> Self {
        command
            .env(
                "COPYDESK_METRICS_LISTEN",
                format!("127.0.0.1:{metrics_port}"),
            )
            .stderr(Stdio::inherit());
        Self {
            role,
            metrics_port,
            process: TestProcess::spawn(command, role),
        }
    }

    /// SIGKILLs the process and reaps it.
    pub(crate) fn kill(&mut self) {
        self.process.kill();
    }

    /// The process's metrics URL.
    pub(crate) fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }
}

/// The ingress process: webhooks, ops API and metrics on their own ports.
pub(crate) struct IngressProc {
    pub(crate) proc: Proc,
    pub(crate) webhook_url: String,
    pub(crate) ops_url: String,
}

/// Starts the ingress binary against the fleet's Redis (`env`: `REDIS_URL`, prefix).
pub(crate) fn start_ingress(env: &HashMap<String, String>, spool_dir: &Path) -> IngressProc {
    let (listen, ops) = (free_port(), free_port());
    let mut command = quiet_command(env!("CARGO_BIN_EXE_copydesk-ingress-process"));
    command
        .envs(env)
        .env("COPYDESK_WEBHOOK_SECRETS", TEST_SECRET)
        .env("COPYDESK_LISTEN", format!("127.0.0.1:{listen}"))
        .env("COPYDESK_OPS_LISTEN", format!("127.0.0.1:{ops}"))
        .env("COPYDESK_OPS_TOKEN", TEST_OPS_TOKEN)
        .env("COPYDESK_SPOOL_DIR", spool_dir);
    IngressProc {
        proc: Proc::spawn("ingress", free_port(), &mut command),
        webhook_url: format!("http://127.0.0.1:{listen}/webhooks/chatwoot"),
        ops_url: format!("http://127.0.0.1:{ops}"),
    }
}

/// Starts `copydesk-fleet run --role <role>` with its metrics on a free port.
pub(crate) fn start_role(role: &'static str, env: &HashMap<String, String>) -> Proc {
    start_role_on(role, env, free_port())
}

/// Starts `copydesk-fleet run --role <role>` with its metrics on `metrics_port`.
pub(crate) fn start_role_on(
    role: &'static str,
    env: &HashMap<String, String>,
    metrics_port: u16,
) -> Proc {
    let mut command = role_command(env!("CARGO_BIN_EXE_copydesk-fleet"), role, env);
    Proc::spawn(role, metrics_port, &mut command)
}

/// Redis and the fake Chatwoot from the pipeline kit, no worker in this process (the test
/// starts the fleet as processes), and a fresh spool directory for the ingress.
pub(crate) async fn world() -> (Pipeline, PathBuf) {
    let p = Pipeline::start(PipelineOptions {
        roles: vec![],
        ..PipelineOptions::default()
    })
    .await
    .expect("pipeline");
    let spool = std::env::temp_dir().join(format!("copydesk-spool-{}", ulid::Ulid::new()));
    (p, spool)
}

/// A customer writes in new conversation `conversation` and Chatwoot's webhook never
/// arrives: the message exists only in the fake Chatwoot. Its approval id, once drafted.
pub(crate) fn lose_a_webhook(p: &Pipeline, conversation: i64, text: &str) -> String {
    p.chatwoot
        .add_conversation(FakeConversation::new(conversation, DEMO_WEB_INBOX, 12));
    let lost = p
        .chatwoot
        .add_incoming_message(conversation, text)
        .expect("conversation added");
    p.approval_id(conversation, lost.id)
}

/// Waits until `url` answers 200, or panics after `within`.
pub(crate) async fn wait_http_ok(http: &reqwest::Client, url: &str, within: Duration) {
    let until = Instant::now() + within;
    loop {
        if let Ok(response) = http.get(url).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < until,
            "{url} did not answer within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A private Prometheus server.
pub(crate) struct Prometheus {
    pub(crate) url: String,
    _process: TestProcess,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Prometheus configuration the test runs: the `copydesk-local` job of
/// deploy/prometheus/scrape-config.yaml with its targets replaced by `targets` (role, port)
/// and 1 s intervals, plus deploy/prometheus/rules/*.yaml.
pub(crate) fn prometheus_config(targets: &[(&str, u16)], rules: &[PathBuf]) -> Value {
    let path = deploy_dir().join("prometheus").join("scrape-config.yaml");
    let text = std::fs::read_to_string(&path).expect("scrape-config.yaml is readable");
    let config: Value = serde_norway::from_str(&text).expect("scrape-config.yaml parses");
    let mut job = config["scrape_configs"]
        .as_array()
        .and_then(|jobs| {
            jobs.iter()
                .find(|j| j["job_name"] == "copydesk-local")
                .cloned()
        })
        .expect("scrape-config.yaml has the copydesk-local job");
    job["scrape_interval"] = json!("1s");
    job["scrape_timeout"] = json!("1s");
    job["static_configs"] = targets
        .iter()
        .map(|(role, port)| json!({"targets": [format!("127.0.0.1:{port}")], "labels": {"role": role}}))
        .collect();
    json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rules.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "scrape_configs": [job],
    })
}

/// Starts `prometheus` (Debian's package; scripts/ensure-prometheus.sh installs it) with
/// `config` on a free port and waits until it is ready.
pub(crate) async fn start_prometheus(http: &reqwest::Client, config: &Value) -> Prometheus {
    let dir = std::env::temp_dir().join(format!("copydesk-prom-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(dir.join("data")).expect("temp dir");
    let config_path = dir.join("prometheus.yml");
    // JSON is YAML.
    std::fs::write(&config_path, config.to_string()).expect("config written");
    let port = free_port();
    let process = TestProcess::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
        "prometheus (bash scripts/ensure-prometheus.sh installs it)",
    );
    let prometheus = Prometheus {
        url: format!("http://127.0.0.1:{port}"),
        _process: process,
        dir,
    };
    wait_http_ok(
        http,
        &format!("{}/-/ready", prometheus.url),
        Duration::from_secs(60),
    )
    .await;
    prometheus
}

impl Prometheus {
    /// `GET /api/v1/<path>` with `params`; the `data` of a success, else the error text.
    pub(crate) async fn api(
        &self,
        http: &reqwest::Client,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Value, String> {
        let response = http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(params)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// The instant vector `query` evaluates to now.
    pub(crate) async fn query(&self, http: &reqwest::Client, query: &str) -> Vec<Value> {
        match self.api(http, "query", &[("query", query)]).await {
            Ok(data) => data["result"].as_array().cloned().unwrap_or_default(),
            Err(error) => panic!("query {query} failed: {error}"),
        }
    }

    /// Polls `query` until `done` holds on its result, or panics with the last result.
    pub(crate) async fn eventually(
        &self,
        http: &reqwest::Client,
        query: &str,
        within: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let until = Instant::now() + within;
        loop {
            let result = self.query(http, query).await;
            if done(&result) {
                return result;
            }
            assert!(
                Instant::now() < until,
                "{query} did not reach the expected value within {within:?}; last: {result:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The single value of a one-series result.
pub(crate) fn scalar(result: &[Value]) -> Option<f64> {
    match result {
        [one] => one["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}
