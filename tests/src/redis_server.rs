//! A private `redis-server` for tests: started on a free port, with its files under
//! `target/test-redis/`, killed on drop. Tests never touch a Redis they did not start.
//!
//! [`RedisServer::start_tls`] serves TLS only (`rediss://`), with a CA and a server
//! certificate made for the test (rcgen): [`RedisServer::redis_config`] and
//! [`RedisServer::client`] trust that CA, as `REDIS_CA_FILE` makes Copydesk do.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use copydesk::config::RedisConfig;

/// How long a fresh `redis-server` may take to answer `PING`.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// A `redis-server` process owned by the test that started it.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    appendonly: bool,
    tls: Option<TlsFiles>,
}

/// The PEM files of a TLS test server, under its directory.
#[derive(Debug, Clone)]
struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    /// A fresh CA and a certificate it signed for `127.0.0.1` and `localhost`, written
    /// under `dir`.
    fn generate(dir: &std::path::Path) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("a CA key can be generated");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("copydesk test CA {}", dir.display()),
        );
        let ca_cert = ca_params.self_signed(&ca_key).expect("the CA signs itself");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().expect("a server key can be generated");
        let server_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server params");
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("the CA signs the server certificate");
        let files = Self {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server-key.pem"),
        };
        for (path, pem) in [
            (&files.ca, ca_cert.pem()),
            (&files.cert, server_cert.pem()),
            (&files.key, server_key.serialize_pem()),
        ] {
            std::fs::write(path, pem).expect("test TLS files can be written");
        }
        files
    }
}

impl RedisServer {
    /// Starts a server without persistence (fast; for tests that do not restart Redis).
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a server with AOF `appendfsync always`, for tests that restart Redis and expect
    /// every acknowledged write to survive.
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    /// Starts a server that speaks TLS only (`--port 0 --tls-port …`), with a certificate
    /// for `127.0.0.1` signed by a CA made for this server ([`Self::ca_file`]); clients are
    /// not asked for certificates. [`Self::url`] is `rediss://…`.
    pub fn start_tls() -> Self {
        Self::start_as(false, true)
    }

    fn start_with(appendonly: bool) -> Self {
        Self::start_as(appendonly, false)
    }

    fn start_as(appendonly: bool, tls: bool) -> Self {
        let port = free_port();
        let dir = target_dir()
            .join("test-redis")
            .join(format!("{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test redis dir can be created under target/");
        let tls = tls.then(|| TlsFiles::generate(&dir));
        let mut server = Self {
            child: None,
            port,
            dir,
            appendonly,
            tls,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.arg("--port").arg(self.port.to_string()),
            Some(tls) => cmd
                .arg("--port")
                .arg("0")
                .arg("--tls-port")
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .arg("--tls-auth-clients")
                .arg("no"),
        };
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .arg("--maxmemory-policy")
            .arg("noeviction")
            .arg("--appendonly")
            .arg(if self.appendonly { "yes" } else { "no" })
            .arg("--appendfsync")
            .arg("always")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "could not start redis-server ({e}). Install it: `apt-get install -y redis-server` \
                 (the README's test command does this for you)"
            )
        });
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Ok(mut conn) = self.client().get_connection() {
                if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://…` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>` whatever the server speaks: for tests of a plain client
    /// against a TLS server.
    pub fn plain_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The PEM file of the CA that signed a TLS server's certificate (`REDIS_CA_FILE`).
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|tls| tls.ca.clone())
    }

    /// The environment a Copydesk process needs to reach this server: `REDIS_URL`, and
    /// `REDIS_CA_FILE` for a TLS server.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("REDIS_URL".to_owned(), self.url())];
        if let Some(ca) = self.ca_file() {
            env.push(("REDIS_CA_FILE".to_owned(), ca.display().to_string()));
        }
        env
    }

    /// The Redis config of a Copydesk component on this server under `key_prefix` (trusting
    /// the test CA for a TLS server).
    pub fn redis_config(&self, key_prefix: &str) -> RedisConfig {
        RedisConfig {
            url: self.url(),
            key_prefix: key_prefix.to_owned(),
            retention: copydesk::retention::DEFAULT_RETENTION,
            ca_file: self.ca_file(),
        }
    }

    /// A client of this server (TLS with the test CA for a TLS server).
    pub fn client(&self) -> redis::Client {
        self.redis_config("")
            .client()
            .expect("the test Redis config is valid")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL): what a crash or node loss looks like to clients.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (AOF is replayed if on).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// True while the process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// A blocking connection for assertions.
    pub fn connection(&self) -> redis::Connection {
        self.client()
            .get_connection()
            .expect("test redis accepts connections")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port is available")
}

/// The cargo target directory (tests run from the crate dir; fall back to the workspace's).
fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
}
