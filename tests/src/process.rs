//! Child processes of tests: worker roles (`copydesk-fleet run --role R`), the ingress binary,
//! chromedriver, Prometheus. A [`TestProcess`] is SIGKILLed and reaped when dropped; it can be
//! sent signals (`SIGTERM`, `SIGSTOP`, `SIGCONT`) and waited on with a deadline.

use std::collections::HashMap;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// An environment map from `(name, value)` pairs (worker env, [`crate::pipeline`] options).
pub use copydesk::config::env_of as env;

/// Where a child's stderr goes: inherited when `TEST_LOG` is set, else nowhere.
pub fn test_log_stderr() -> Stdio {
    if std::env::var_os("TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    }
}

/// `{fleet_bin} run --role {role}` with `env` (which may override the default `RUST_LOG=warn`),
/// no stdin, no stdout, stderr per [`test_log_stderr`]. `fleet_bin` is the test's
/// `env!("CARGO_BIN_EXE_copydesk-fleet")`.
pub fn role_command(fleet_bin: &str, role: &str, env: &HashMap<String, String>) -> Command {
    let mut command = quiet_command(fleet_bin);
    command.args(["run", "--role", role]).envs(env);
    command
}

/// Runs `{fleet_bin} run --role {role}` with `env` (on top of a Chatwoot that is never
/// reached) until it exits, for roles expected to refuse to start: its exit status and
/// stderr. Panics when it is still running after `deadline`.
pub async fn refused_start(
    fleet_bin: &str,
    role: &str,
    env: &[(&str, &str)],
    deadline: Duration,
) -> (ExitStatus, String) {
    let child = tokio::process::Command::new(fleet_bin)
        .args(["run", "--role", role])
        .env("CHATWOOT_BASE_URL", "http://127.0.0.1:9")
        .env("CHATWOOT_API_TOKEN", "unused")
        .env("CHATWOOT_ACCOUNT_ID", "1")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the fleet binary starts");
    let output = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{role} exits within {deadline:?} instead of waiting"))
        .expect("the role's output");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `program` with `RUST_LOG=warn`, no stdin, no stdout, stderr per [`test_log_stderr`].
pub fn quiet_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(test_log_stderr());
    command
}

/// A process a test started; SIGKILLed and reaped on drop.
#[derive(Debug)]
pub struct TestProcess {
    child: Child,
    what: String,
}

impl TestProcess {
    /// Spawns `command`; `what` names it in panics ("the notes worker").
    pub fn spawn(command: &mut Command, what: &str) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{what} could not be started: {e}"));
        Self {
            child,
            what: what.to_owned(),
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`"-TERM"`, `"-STOP"`, `"-CONT"`, …) with `kill`; panics when it fails.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(
            status.success(),
            "kill {signal} {} ({})",
            self.id(),
            self.what
        );
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    /// SIGKILL (what an OOM kill or node loss looks like), then reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its exit status once it exits within `within`, else `None` (it keeps running).
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait works") {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its exit status; when it has not exited within `within`, SIGKILLs it and panics.
    pub fn expect_exit(&mut self, within: Duration) -> ExitStatus {
        match self.wait_exit(within) {
            Some(status) => status,
            None => {
                self.kill();
                panic!("{} did not exit within {within:?}", self.what);
            }
        }
    }

    /// SIGTERM, then [`Self::expect_exit`].
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        self.sigterm();
        self.expect_exit(within)
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The smoke test of a binary: spawns `command` (its environment complete), waits until
/// `readyz` answers 200 (panics after `ready_within`), sends SIGTERM and returns its exit
/// status (panics when it has not exited within `exit_within`). `what` names it in panics.
pub async fn ready_then_sigterm(
    command: &mut Command,
    what: &str,
    readyz: &str,
    ready_within: Duration,
    exit_within: Duration,
) -> ExitStatus {
    let mut process = TestProcess::spawn(command, what);
    let http = reqwest::Client::new();
    crate::wait::wait_until_async(
        format_args!("{what} to answer {readyz} with 200"),
        ready_within,
        || async {
            http.get(readyz)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    process.terminate(exit_within)
}
