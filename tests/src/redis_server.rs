//! A private `redis-server` for tests: started on a free port, with its files under
//! `target/test-redis/`, killed on drop. Tests never touch a Redis they did not start.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh `redis-server` may take to answer `PING`.
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// A `redis-server` process owned by the test that started it.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    appendonly: bool,
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

    fn start_with(appendonly: bool) -> Self {
        let port = free_port();
        let dir = target_dir()
            .join("test-redis")
            .join(format!("{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test redis dir can be created under target/");
        let mut server = Self {
            child: None,
            port,
            dir,
            appendonly,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
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
            if let Ok(client) = redis::Client::open(self.url()) {
                if let Ok(mut conn) = client.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut conn).is_ok() {
                        return;
                    }
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

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
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
