//! Issue 12 §2: 2 000 connections each sending 100 KB of a request head that never ends
//! cannot grow the real `copydesk-ingress` process by more than [`RSS_GROWTH_LIMIT_MIB`]
//! (measured in the ingress's own `/proc/<pid>/status`, not in the test process). Heads are
//! limited to 16 KiB (431 beyond) in a read buffer of at most 32 KiB, so the flood is
//! refused early; with hyper's default buffer (~400 KB) every connection kept its 100 KB.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use copydesk_testkit::redis_server::free_port;
use copydesk_testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BINARY: &str = env!("CARGO_BIN_EXE_copydesk-ingress");
/// Connections in the flood.
const CONNECTIONS: usize = 2_000;
/// Bytes of unfinished head each sends.
const HEAD_BYTES: usize = 100 * 1000;
/// What the flood may add to the ingress's peak resident memory. The unbounded case needs
/// 2 000 × 100 KB ≈ 190 MiB at least.
const RSS_GROWTH_LIMIT_MIB: u64 = 64;

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the ingress's /proc status is readable");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{field} is in /proc/{pid}/status"))
}

struct Ingress(Child);

impl Drop for Ingress {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One connection: the head's first 100 KB, never its end; returns the status line's code
/// if the ingress answered within 20 s, `None` if it closed silently or not at all.
async fn flood_one(port: u16) -> Option<u16> {
    static PAD: [u8; HEAD_BYTES] = [b'a'; HEAD_BYTES];
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let _ = stream
        .write_all(b"POST /webhooks/chatwoot HTTP/1.1\r\nHost: ingress\r\nX-Pad: ")
        .await;
    let _ = stream.write_all(&PAD).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_connections_of_unfinished_100_kb_heads_keep_the_ingress_rss_bounded() {
    // Arrange: the real binary.
    let redis = RedisServer::start();
    let port = free_port();
    let child = Command::new(BINARY)
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("COPYDESK_KEY_PREFIX", "flood")
        .env("COPYDESK_WEBHOOK_SECRETS", "flood-secret")
        .env("COPYDESK_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let ingress = Ingress(child);
    let pid = ingress.0.id();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "the ingress became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = status_kib(pid, "VmRSS") / 1024;

    // Act
    let flood: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(flood_one(port)))
        .collect();
    let mut answers = std::collections::BTreeMap::new();
    for connection in flood {
        let status = connection.await.expect("a flood task does not panic");
        *answers.entry(status).or_insert(0usize) += 1;
    }
    let peak = status_kib(pid, "VmHWM") / 1024;
    let still_ready = http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16());

    // Assert
    let growth = peak.saturating_sub(rss_before);
    println!(
        "header flood: {CONNECTIONS} × {HEAD_BYTES} B unfinished heads; answers {answers:?}; \
         ingress RSS before {rss_before} MiB, peak {peak} MiB (+{growth} MiB)"
    );
    assert!(
        growth < RSS_GROWTH_LIMIT_MIB,
        "the ingress grew by {growth} MiB (limit {RSS_GROWTH_LIMIT_MIB} MiB)"
    );
    assert!(
        answers
            .keys()
            .all(|status| matches!(status, None | Some(431))),
        "an oversized head gets 431 or is cut off: {answers:?}"
    );
    assert_eq!(still_ready.ok(), Some(200), "the ingress still serves");
}
