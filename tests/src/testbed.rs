//! The common start of the end-to-end harnesses: test logging (`RUST_LOG`, captured per test),
//! a private `redis-server`, a key prefix of the test's own, and what is built on them (a
//! queue client, the ingress). Each test file's harness composes its parts from a [`TestBed`].

use copydesk::config::RedisConfig;
use copydesk::queue::QueueClient;
use copydesk_ingress::IngressConfig;

use crate::ingress_app::{spawn_ingress_with, test_config, unique_prefix, TestIngress};
use crate::redis_server::RedisServer;

/// Installs the test log subscriber once (`RUST_LOG` filters; output captured per test).
pub fn init_test_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A private Redis and a key prefix of the test's own.
#[derive(Debug)]
pub struct TestBed {
    /// The private Redis (killed on drop).
    pub redis: RedisServer,
    /// The test's key prefix (`t-{label}-{ulid}`).
    pub prefix: String,
}

impl TestBed {
    /// Test logging, a Redis without persistence and a fresh prefix.
    pub fn start(label: &str) -> Self {
        Self::with_redis(label, RedisServer::start())
    }

    /// Like [`Self::start`] with AOF on, for tests that restart Redis.
    pub fn start_durable(label: &str) -> Self {
        Self::with_redis(label, RedisServer::start_durable())
    }

    /// Test logging, `redis` and a fresh prefix.
    pub fn with_redis(label: &str, redis: RedisServer) -> Self {
        init_test_tracing();
        Self {
            redis,
            prefix: unique_prefix(label),
        }
    }

    /// `redis://…` of the private Redis.
    pub fn redis_url(&self) -> String {
        self.redis.url()
    }

    /// Redis URL and prefix, as every Copydesk component takes them.
    pub fn redis_config(&self) -> RedisConfig {
        self.redis.redis_config(&self.prefix)
    }

    /// An async connection of its own to the private Redis, for assertions.
    pub async fn redis_async(&self) -> redis::aio::MultiplexedConnection {
        self.redis
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("the test Redis accepts connections")
    }

    /// A queue client of its own (own connections) under the prefix.
    pub async fn queue(&self) -> QueueClient {
        QueueClient::build(&self.redis_config())
            .await
            .expect("the queue client builds against the test Redis")
    }

    /// The test ingress config against this Redis and prefix ([`test_config`]).
    pub fn ingress_config(&self) -> IngressConfig {
        IngressConfig {
            redis: self.redis_config(),
            ..test_config(&self.redis.url(), &self.prefix)
        }
    }

    /// A fresh test bed (see [`Self::start`]) and the real ingress on it.
    pub async fn with_ingress(label: &str) -> (Self, TestIngress) {
        let bed = Self::start(label);
        let ingress = bed.ingress().await;
        (bed, ingress)
    }

    /// The real ingress with [`Self::ingress_config`].
    pub async fn ingress(&self) -> TestIngress {
        spawn_ingress_with(self.ingress_config()).await
    }

    /// The real ingress with [`Self::ingress_config`] changed by `edit`.
    pub async fn ingress_with(
        &self,
        edit: impl FnOnce(IngressConfig) -> IngressConfig,
    ) -> TestIngress {
        spawn_ingress_with(edit(self.ingress_config())).await
    }
}
