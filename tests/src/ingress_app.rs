//! `spawn_ingress`: the real ingress (its library's own `build()`) on `127.0.0.1:0`, against a
//! Redis the test started, under a key prefix of the test's own.

use std::net::SocketAddr;
use std::time::Duration;

use copydesk::config::RedisConfig;
use copydesk::signature::parse_secrets;
use copydesk_ingress::config::{OpsConfig, DEFAULT_MAX_BODY_BYTES, DEFAULT_SHUTDOWN_TIMEOUT};
use copydesk_ingress::{Application, IngressConfig, ShutdownOutcome};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::webhook::WebhookSender;

/// The first webhook secret every test ingress accepts.
pub const TEST_SECRET: &str = "copydesk-test-secret-1";
/// The second one (rotation, or a second Chatwoot webhook).
pub const SECOND_TEST_SECRET: &str = "copydesk-test-secret-2";

/// A key prefix no other test uses: `t-{label}-{ulid}`.
pub fn unique_prefix(label: &str) -> String {
    format!("t-{label}-{}", ulid::Ulid::new())
}

/// The config a test ingress runs with; change fields and call [`spawn_ingress_with`].
pub fn test_config(redis_url: &str, prefix: &str) -> IngressConfig {
    IngressConfig {
        redis: RedisConfig {
            url: redis_url.to_owned(),
            key_prefix: prefix.to_owned(),
            retention: copydesk::retention::DEFAULT_RETENTION,
            ca_file: None,
        },
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        // `/metrics` is served only here, never on the webhook listener.
        metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        webhook_secrets: parse_secrets(&format!("{TEST_SECRET},{SECOND_TEST_SECRET}")),
        // Secrets bound to accounts, and legacy mode, only where a test sets them
        // (tests/e2e/accounts.rs, tests/e2e/legacy_webhooks.rs).
        accounts: Default::default(),
        legacy: None,
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        signature_tolerance: copydesk::signature::DEFAULT_TOLERANCE,
        shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        // No ops API unless a test asks for one (see `with_ops`).
        ops: None,
        // No spool unless a test sets one (see tests/e2e/spool.rs).
        spool: None,
        // Every message drafted at once unless a test turns bursts on (tests/e2e/bursts.rs).
        burst: copydesk::queue::Burst::OFF,
        allow_eviction: false,
    }
}

/// The bearer token of the ops API that [`with_ops`] configures.
pub const TEST_OPS_TOKEN: &str = "copydesk-test-ops-token";

/// `config` with the ops API on `127.0.0.1:0` behind [`TEST_OPS_TOKEN`].
pub fn with_ops(config: IngressConfig) -> IngressConfig {
    IngressConfig {
        ops: Some(OpsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: TEST_OPS_TOKEN.into(),
            console: None,
        }),
        ..config
    }
}

/// A running ingress and what a test needs to talk to it. Stopped on drop.
#[derive(Debug)]
pub struct TestIngress {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where the ops API listens, if configured ([`with_ops`]).
    pub ops_addr: Option<SocketAddr>,
    /// Where `/metrics` is served, if configured (it is in [`test_config`]).
    pub metrics_addr: Option<SocketAddr>,
    /// Its key prefix.
    pub prefix: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The first accepted secret ([`TEST_SECRET`]).
    pub secret: String,
    /// Signs and posts webhooks with [`TEST_SECRET`].
    pub sender: WebhookSender,
    redis: RedisConfig,
    shutdown: CancellationToken,
    task: Option<JoinHandle<ShutdownOutcome>>,
}

/// Starts the ingress against `redis_url` under `prefix`, with [`test_config`].
pub async fn spawn_ingress(redis_url: &str, prefix: &str) -> TestIngress {
    spawn_ingress_with(test_config(redis_url, prefix)).await
}

/// Starts the ingress with `config` (its `listen` should be port 0).
pub async fn spawn_ingress_with(config: IngressConfig) -> TestIngress {
    if std::env::var_os("TEST_LOG").is_some() {
        copydesk::telemetry::init();
    }
    let redis = config.redis.clone();
    let prefix = config.redis.key_prefix.clone();
    let app = Application::build(config)
        .await
        .expect("the test ingress builds");
    let addr = app.addr();
    let ops_addr = app.ops_addr();
    let metrics_addr = app.metrics_addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client builds");
    let sender = WebhookSender::new(
        http.clone(),
        format!("http://{addr}/webhooks/chatwoot"),
        TEST_SECRET,
    );
    TestIngress {
        addr,
        ops_addr,
        metrics_addr,
        prefix,
        http,
        secret: TEST_SECRET.to_owned(),
        sender,
        redis,
        shutdown,
        task: Some(task),
    }
}

impl TestIngress {
    /// `http://{addr}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://{ops_addr}{path}`; panics when the ingress has no ops API ([`with_ops`]).
    pub fn ops_url(&self, path: &str) -> String {
        let addr = self
            .ops_addr
            .expect("the ops API is configured (build the config with `with_ops`)");
        format!("http://{addr}{path}")
    }

    /// The text of `GET /metrics` on the metrics listener; panics when none is configured.
    pub async fn metrics(&self) -> String {
        let addr = self
            .metrics_addr
            .expect("the metrics listener is configured (test_config sets one)");
        self.http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("the metrics listener answers")
            .text()
            .await
            .expect("metrics text")
    }

    /// Posts a signed webhook with a fresh delivery id.
    pub async fn post_webhook(&self, payload: &Value) -> reqwest::Response {
        self.sender
            .post(payload)
            .await
            .expect("the ingress answers")
    }

    /// Posts a signed webhook under `delivery_id`.
    pub async fn post_webhook_as(&self, payload: &Value, delivery_id: &str) -> reqwest::Response {
        self.sender
            .post_as(payload, delivery_id)
            .await
            .expect("the ingress answers")
    }

    /// `GET {path}`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("the ingress answers")
    }

    /// The job payloads waiting on `queue`'s stream, oldest first (`XRANGE - +`).
    pub async fn queued_jobs(&self, queue: &str) -> Vec<Value> {
        let client = self.redis.client().expect("a valid Redis config");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("test Redis is up");
        let key = copydesk::queue::Keys::new(self.prefix.clone()).stream(queue);
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("XRANGE works");
        entries
            .into_iter()
            .map(|(_, fields)| {
                let payload = fields
                    .chunks(2)
                    .find(|pair| pair[0] == "p")
                    .map(|pair| pair[1].clone())
                    .expect("every entry has a payload field `p`");
                serde_json::from_str(&payload).expect("payloads are JSON")
            })
            .collect()
    }

    /// Cancels the shutdown token and waits for the ingress to finish.
    pub async fn stop(mut self) -> ShutdownOutcome {
        self.shutdown.cancel();
        let task = self.task.take().expect("stop is called once");
        task.await.expect("the ingress task does not panic")
    }
}

impl Drop for TestIngress {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
