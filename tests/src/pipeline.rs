//! The whole fleet in one process for tests and the demo: a private redis-server, the fake
//! Chatwoot, the real ingress and every worker role (`copydesk run --all` in-process), plus
//! "the customer writes" → signed `message_created` webhook, and waits on approval items.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use copydesk::approvals::{ApprovalItem, ApprovalStore};
use copydesk::config::RedisConfig;
use copydesk::queue::QueueClient;
use copydesk_workers::runtime::{Fleet, Role};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::fake_chatwoot::{FakeChatwoot, Seed};
use crate::ingress_app::{spawn_ingress_with, test_config, with_ops, TestIngress};
use crate::redis_server::RedisServer;
use crate::testbed::TestBed;

/// The sample knowledge base shipped in the repository (`knowledge/`).
pub fn sample_knowledge_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("knowledge")
}

/// The routing table matching [`Seed::demo`]'s teams (`tests/fixtures/routing.demo.toml`).
pub fn demo_routing_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("routing.demo.toml")
}

/// What customers write in the steady-rate scenario (`every_message_at_a_steady_rate_gets_its_note`
/// and the `latency-bench` binary), round robin.
pub const STEADY_RATE_TEXTS: [&str; 4] = [
    "What does AN-6 mean in inches?",
    "Which hose fits an AN-8 fitting?",
    "Do you ship to Canada?",
    "My AN fittings are leaking at the carburetor.",
];

/// Every role but the reconciliation sweep: tests deliver (or drop) webhooks themselves, and
/// a sweep recovering what a test left undelivered on purpose would change what it checks.
/// Tests of the sweep add [`Role::RECONCILER`].
pub fn webhook_roles() -> Vec<Role> {
    Role::all()
        .into_iter()
        .filter(|r| *r != Role::RECONCILER)
        .collect()
}

/// How a [`Pipeline`] is started.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// The fake Chatwoot's initial state.
    pub seed: Seed,
    /// Roles run in-process ([`webhook_roles`] by default).
    pub roles: Vec<Role>,
    /// Extra environment for the workers (e.g. `COPYDESK_KNOWLEDGE_URL`, `COPYDESK_LLM_URL`,
    /// `COPYDESK_MAX_ATTEMPTS`, `COPYDESK_BACKOFF_BASE_MS`).
    pub env: HashMap<String, String>,
    /// Serve the ops API (on `127.0.0.1:0`, token [`crate::ingress_app::TEST_OPS_TOKEN`]).
    pub ops: bool,
    /// Start Redis with AOF on (`appendfsync always`), so a restart keeps every write.
    pub durable_redis: bool,
    /// Serve the operator console on the ops listener (implies `ops`), verifying operators
    /// against the fake Chatwoot; these origins may frame it besides the fake's own.
    pub console_frame_ancestors: Option<Vec<String>>,
    /// The ingress enqueues a customer's messages as bursts (off by default: every message is
    /// drafted at once); the knowledge workers get the same `COPYDESK_BURST_*` settings.
    pub burst: copydesk::queue::Burst,
    /// Redis speaks TLS only (`rediss://` with a test CA, [`RedisServer::start_tls`]).
    pub tls_redis: bool,
}

impl PipelineOptions {
    /// Runs only `roles` in-process.
    pub fn roles(mut self, roles: Vec<Role>) -> Self {
        self.roles = roles;
        self
    }

    /// Adds `pairs` to the workers' environment.
    pub fn env(mut self, pairs: &[(&str, &str)]) -> Self {
        self.env.extend(crate::process::env(pairs));
        self
    }

    /// Starts Redis with AOF on ([`Self::durable_redis`]).
    pub fn durable(mut self) -> Self {
        self.durable_redis = true;
        self
    }

    /// Runs on a TLS-only Redis ([`Self::tls_redis`]).
    pub fn tls_redis(mut self) -> Self {
        self.tls_redis = true;
        self
    }

    /// Serves the ops API ([`Self::ops`]).
    pub fn with_ops(mut self) -> Self {
        self.ops = true;
        self
    }

    /// Starts the pipeline; panics when it cannot start.
    pub async fn start(self) -> Pipeline {
        Pipeline::start(self).await.expect("the pipeline starts")
    }
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            seed: Seed::demo(),
            roles: webhook_roles(),
            env: HashMap::new(),
            ops: false,
            durable_redis: false,
            console_frame_ancestors: None,
            burst: copydesk::queue::Burst::OFF,
            tls_redis: false,
        }
    }
}

/// A running fleet. Stops its parts when dropped.
pub struct Pipeline {
    /// The private Redis.
    pub redis: RedisServer,
    /// The fake Chatwoot.
    pub chatwoot: FakeChatwoot,
    /// The ingress.
    pub ingress: TestIngress,
    /// Queue access under the fleet's prefix.
    pub queue: QueueClient,
    /// The approval store.
    pub approvals: ApprovalStore,
    /// The environment the workers were built from.
    pub env: HashMap<String, String>,
    ingress_config: copydesk_ingress::config::IngressConfig,
    workers: JoinHandle<anyhow::Result<()>>,
    /// Cancels the workers when the pipeline is dropped.
    stop_workers: DropGuard,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("ingress", &self.ingress.addr)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Starts everything with `options`.
    pub async fn start(options: PipelineOptions) -> anyhow::Result<Self> {
        let TestBed { redis, prefix } = if options.tls_redis {
            TestBed::with_redis("pipeline", RedisServer::start_tls())
        } else if options.durable_redis {
            TestBed::start_durable("pipeline")
        } else {
            TestBed::start("pipeline")
        };
        let chatwoot = FakeChatwoot::start(options.seed).await;
        let mut env: HashMap<String, String> = redis.env().into_iter().collect();
        env.extend([
            ("COPYDESK_KEY_PREFIX".to_owned(), prefix.clone()),
            ("CHATWOOT_BASE_URL".to_owned(), chatwoot.base_url()),
            ("CHATWOOT_API_TOKEN".to_owned(), chatwoot.token().to_owned()),
            (
                "CHATWOOT_ACCOUNT_ID".to_owned(),
                chatwoot.account_id().to_string(),
            ),
            (
                "COPYDESK_KNOWLEDGE_DIR".to_owned(),
                sample_knowledge_dir().display().to_string(),
            ),
            (
                "COPYDESK_ROUTING_FILE".to_owned(),
                demo_routing_file().display().to_string(),
            ),
            // The demo shop's CRM writes `vip` on contacts through the API (its widget never
            // lets visitors set it), so the drafter may trust it; nothing is trusted by default.
            ("COPYDESK_VIP_ATTRIBUTES".to_owned(), "vip".to_owned()),
            // Quick retries so failure paths finish within a test.
            ("COPYDESK_BACKOFF_BASE_MS".to_owned(), "50".to_owned()),
            ("COPYDESK_BACKOFF_MAX_MS".to_owned(), "500".to_owned()),
        ]);
        env.insert(
            "COPYDESK_BURST_WINDOW_MS".to_owned(),
            options.burst.window.as_millis().to_string(),
        );
        env.insert(
            "COPYDESK_BURST_CAP_MS".to_owned(),
            options.burst.cap.as_millis().to_string(),
        );
        env.extend(options.env);
        let mut config = test_config(&redis.url(), &prefix);
        config.redis = redis.redis_config(&prefix);
        config.burst = options.burst;
        if options.ops || options.console_frame_ancestors.is_some() {
            config = with_ops(config);
        }
        if let (Some(ops), Some(extra)) = (config.ops.as_mut(), options.console_frame_ancestors) {
            let mut console = copydesk_ingress::console::ConsoleConfig::new(
                &chatwoot.base_url(),
                chatwoot.account_id(),
            );
            console.frame_ancestors.extend(extra);
            console.teams = copydesk_ingress::console::config::teams_of_file(&demo_routing_file())
                .expect("the demo routing file lists teams");
            ops.console = Some(console);
        }
        let ingress = spawn_ingress_with(config.clone()).await;
        let fleet = Fleet::build(&options.roles, &env).await?;
        let queue = fleet.queue().clone();
        let approvals = ApprovalStore::for_queue(&queue);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(fleet.run(shutdown.clone()));
        Ok(Self {
            redis,
            chatwoot,
            ingress,
            queue,
            approvals,
            env,
            ingress_config: config,
            workers: task,
            stop_workers: shutdown.drop_guard(),
        })
    }

    /// Replaces the ingress with a new one (same configuration, new port) and stops the old
    /// one. Returns a sender aimed at the stopped ingress: what Chatwoot sends there during
    /// the outage fails to connect and is lost, as Chatwoot's deliveries are.
    pub async fn replace_ingress(&mut self) -> crate::webhook::WebhookSender {
        let fresh = spawn_ingress_with(self.ingress_config.clone()).await;
        let old = std::mem::replace(&mut self.ingress, fresh);
        let sender = old.sender.clone();
        old.stop().await;
        sender
    }

    /// The Redis config the fleet uses.
    pub fn redis_config(&self) -> RedisConfig {
        self.redis.redis_config(self.queue.keys().prefix())
    }

    /// The customer writes `text` in `conversation_id` (stored in the fake Chatwoot) and
    /// Chatwoot's `message_created` webhook is posted to the ingress. Returns the message id
    /// and the ingress's status code.
    pub async fn customer_writes(&self, conversation_id: i64, text: &str) -> (i64, u16) {
        let message = self
            .chatwoot
            .add_incoming_message(conversation_id, text)
            .expect("the conversation exists in the fake Chatwoot");
        let status = self
            .deliver_message_webhook(conversation_id, message.id)
            .await;
        (message.id, status)
    }

    /// Posts the `message_created` webhook of a stored customer message.
    pub async fn deliver_message_webhook(&self, conversation_id: i64, message_id: i64) -> u16 {
        let payload = self
            .chatwoot
            .message_created_webhook(conversation_id, message_id)
            .expect("a stored customer message");
        self.ingress.post_webhook(&payload).await.status().as_u16()
    }

    /// The approval id of a customer message.
    pub fn approval_id(&self, conversation_id: i64, message_id: i64) -> String {
        ApprovalStore::approval_id(self.chatwoot.account_id(), conversation_id, message_id)
    }

    /// Waits until `approval_id` exists and `done(item)` holds, or `deadline` passes.
    pub async fn wait_for(
        &self,
        approval_id: &str,
        deadline: Duration,
        done: impl Fn(&ApprovalItem) -> bool,
    ) -> Option<ApprovalItem> {
        let until = Instant::now() + deadline;
        loop {
            if let Ok(Some(item)) = self.approvals.get(approval_id).await {
                if done(&item) {
                    return Some(item);
                }
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(crate::wait::POLL).await;
        }
    }

    /// Waits until the item's private note is posted.
    pub async fn wait_for_note(
        &self,
        approval_id: &str,
        deadline: Duration,
    ) -> Option<ApprovalItem> {
        self.wait_for(approval_id, deadline, |item| item.note_id.is_some())
            .await
    }

    /// Stops the workers gracefully (then the ingress, fake and Redis on drop).
    pub async fn stop(self) -> anyhow::Result<()> {
        let Self {
            workers,
            stop_workers,
            ingress,
            ..
        } = self;
        drop(stop_workers);
        workers.await??;
        ingress.stop().await;
        Ok(())
    }
}
