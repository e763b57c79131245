//! The queue layer's consumer side against a private redis-server: claim and ack at backlog
//! scale, crash recovery via `XAUTOCLAIM`, idle pickup latency, retries with backoff, dead
//! letters (and their redrive), panics, undecodable entries, graceful shutdown, lease renewal.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use copydesk::domain::{AccountId, ConversationId};
use copydesk::jobs::{JobMeta, PostNote};
use copydesk::queue::{
    run_until_empty, run_worker, DeadLetterFilter, DeadLetters, DrainOutcome, JobAttempt, JobError,
    NewJob, QueueClient, QueueError, QueueSettings,
};
use copydesk_testkit::testbed::TestBed;
use copydesk_testkit::RedisServer;
use futures::StreamExt;
use redis::Commands;
use tokio_util::sync::CancellationToken;

const QUEUE: &str = "post_note";

struct Harness {
    redis: RedisServer,
    client: QueueClient,
    prefix: String,
}

impl Harness {
    async fn start(name: &str) -> Self {
        let bed = TestBed::start(name);
        let client = bed.queue().await;
        let TestBed { redis, prefix } = bed;
        Self {
            redis,
            client,
            prefix,
        }
    }

    fn stream(&self) -> String {
        self.client.keys().stream(QUEUE)
    }

    fn conn(&self) -> redis::Connection {
        self.redis.connection()
    }

    /// True when some client is blocked (a worker waiting in `XREADGROUP … BLOCK`).
    fn has_blocked_client(&self) -> bool {
        let mut conn = self.conn();
        let clients: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut conn)
            .expect("client list");
        clients.lines().any(|l| {
            l.contains("cmd=xreadgroup")
                && l.split(' ')
                    .any(|f| f.starts_with("flags=") && f.contains('b'))
        })
    }

    /// XLEN, XPENDING count, ZCARD delayed.
    fn leftovers(&self) -> (u64, u64, u64) {
        let mut conn = self.conn();
        let len: u64 = conn.xlen(self.stream()).expect("xlen");
        let pending: (u64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
            .arg(self.stream())
            .arg("workers")
            .query(&mut conn)
            .expect("xpending");
        let delayed: u64 = conn
            .zcard(self.client.keys().delayed(QUEUE))
            .expect("zcard");
        (len, pending.0, delayed)
    }

    fn consumers(&self) -> Vec<String> {
        let mut conn = self.conn();
        let info: redis::Value = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(self.stream())
            .arg("workers")
            .query(&mut conn)
            .expect("XINFO CONSUMERS (stream and group exist)");
        let redis::Value::Array(consumers) = info else {
            panic!("unexpected XINFO reply {info:?}")
        };
        consumers
            .iter()
            .filter_map(|c| {
                let redis::Value::Array(fields) = c else {
                    return None;
                };
                let at = fields
                    .iter()
                    .position(|f| matches!(f, redis::Value::BulkString(b) if b == b"name"))?;
                match fields.get(at + 1)? {
                    redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                    _ => None,
                }
            })
            .collect()
    }
}

fn settings() -> QueueSettings {
    QueueSettings {
        visibility_timeout: Duration::from_secs(2),
        block: Duration::from_millis(100),
        reclaim_interval: Duration::from_millis(100),
        max_in_flight: 32,
        max_attempts: 3,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        maintenance_interval: Duration::from_millis(20),
        shutdown_deadline: Duration::from_secs(5),
        ..QueueSettings::default()
    }
}

fn job(id: &str) -> PostNote {
    PostNote {
        meta: JobMeta::new(format!("d-{id}").parse().expect("a valid delivery id"), 0),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(2),
        approval_id: id.parse().expect("a valid approval id"),
    }
}

/// Enqueues `ids` without dedupe keys, in batches of 500, 8 batches at a time.
async fn enqueue_plain(client: &QueueClient, ids: Vec<String>) {
    let batches: Vec<Vec<NewJob>> = ids
        .chunks(500)
        .map(|chunk| {
            chunk
                .iter()
                .map(|id| NewJob::encode(&job(id)).expect("encodes"))
                .collect()
        })
        .collect();
    futures::stream::iter(batches)
        .map(|batch| {
            let client = client.clone();
            async move { client.enqueue_batch(&[], &batch).await.expect("enqueued") }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

type Runs = Arc<Mutex<HashMap<String, Vec<JobAttempt>>>>;

fn record(runs: &Runs, job: &PostNote, attempt: JobAttempt) {
    runs.lock()
        .expect("lock")
        .entry(job.approval_id.to_string())
        .or_default()
        .push(attempt);
}

/// Runs a worker that records every attempt and succeeds, until the queue is empty (20 s at
/// most); returns how it ended and what ran.
async fn drain_recording(h: &Harness) -> Result<(DrainOutcome, Runs), QueueError> {
    let runs: Runs = Arc::default();
    let seen = runs.clone();
    let handler = move |job: PostNote, attempt: JobAttempt| {
        let seen = seen.clone();
        async move {
            record(&seen, &job, attempt);
            Ok::<(), JobError>(())
        }
    };
    let drained = run_until_empty::<PostNote, _, _>(
        h.client.clone(),
        settings(),
        handler,
        Duration::from_secs(20),
    )
    .await?;
    Ok((drained, runs))
}

fn used_memory(conn: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query(conn).expect("info");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_50k_is_acked_once_each_and_leaves_nothing_behind() {
    let h = Harness::start("backlog").await;
    let mut conn = h.conn();
    let baseline = used_memory(&mut conn);
    let ids: Vec<String> = (0..50_000).map(|i| format!("job-{i}")).collect();
    enqueue_plain(&h.client, ids).await;
    let queued = used_memory(&mut conn);

    let runs: Runs = Arc::default();
    let seen = runs.clone();
    let handler = move |job: PostNote, attempt: JobAttempt| {
        let seen = seen.clone();
        async move {
            record(&seen, &job, attempt);
            Ok::<(), JobError>(())
        }
    };
    let started = Instant::now();
    let settings = QueueSettings {
        max_in_flight: 128,
        ..settings()
    };
    let outcome = run_until_empty::<PostNote, _, _>(
        h.client.clone(),
        settings,
        handler,
        Duration::from_secs(90),
    )
    .await
    .expect("worker runs");
    let elapsed = started.elapsed();
    assert_eq!(outcome, DrainOutcome::Drained);

    let runs = runs.lock().expect("lock");
    assert_eq!(runs.len(), 50_000, "every job ran");
    let twice = runs.values().filter(|r| r.len() != 1).count();
    assert_eq!(twice, 0, "no job ran twice");
    assert!(runs.values().all(|r| r[0].attempt == 1));
    assert_eq!(
        h.leftovers(),
        (0, 0, 0),
        "stream, PEL and delayed set are empty"
    );
    let keys: Vec<String> = conn.keys(format!("{}:*", h.prefix)).expect("keys");
    assert_eq!(keys, vec![h.stream()], "only the (empty) stream is left");
    assert!(
        h.consumers().is_empty(),
        "the worker left the group on shutdown"
    );
    let after = used_memory(&mut conn);
    println!(
        "backlog 50k: {:.0} jobs/s; used_memory {baseline} -> {queued} queued -> {after} after",
        50_000.0 / elapsed.as_secs_f64()
    );
    assert!(
        after - baseline < 1_000_000,
        "used_memory back near baseline: {baseline} -> {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_starts_a_new_job_within_100ms() {
    let h = Harness::start("idle").await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let handler = move |job: PostNote, _attempt: JobAttempt| {
        let tx = tx.clone();
        async move {
            let _ = tx.send((job.approval_id.into_string(), Instant::now()));
            Ok::<(), JobError>(())
        }
    };
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(run_worker::<PostNote, _, _>(
        h.client.clone(),
        settings(),
        handler,
        shutdown.clone(),
    ));
    // Deterministic start: wait until the worker has joined the group (its first XREADGROUP).
    // Deterministic start: wait until the worker's claim connection is BLOCKed in XREADGROUP.
    while !h.has_blocked_client() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut delays = Vec::new();
    for i in 0..20 {
        // Gaps shorter and longer than BLOCK (100 ms), so some enqueues hit a fresh BLOCK.
        tokio::time::sleep(Duration::from_millis(if i % 2 == 0 { 30 } else { 170 })).await;
        let sent = Instant::now();
        h.client
            .enqueue(&job(&format!("idle-{i}")))
            .await
            .expect("enqueued");
        let (id, started) = rx.recv().await.expect("handler ran");
        assert_eq!(id, format!("idle-{i}"));
        delays.push(started - sent);
    }
    shutdown.cancel();
    worker.await.expect("joins").expect("worker ends cleanly");
    delays.sort();
    println!(
        "idle pickup, enqueue -> handler start: p50 {:?}, max {:?}",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    assert!(
        delays[delays.len() - 1] < Duration::from_millis(100),
        "slowest pickup {:?}",
        delays[delays.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_held_by_a_sigkilled_consumer_are_reclaimed_after_the_visibility_timeout() {
    let h = Harness::start("kill").await;
    let total = 2_000;
    enqueue_plain(&h.client, (0..total).map(|i| format!("k-{i}")).collect()).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_queue_consumer"))
        .args([
            "--redis-url",
            &h.redis.url(),
            "--prefix",
            &h.prefix,
            "--consumer",
            "victim",
        ])
        .args([
            "--visibility-ms",
            "2000",
            "--handler-ms",
            "100",
            "--max-in-flight",
            "32",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("queue_consumer starts");
    let processed_key = h.client.keys().scratch("processed");
    let mut conn = h.conn();
    // Wait until the victim has finished some jobs and holds a full set of claims.
    loop {
        let done: u64 = conn.llen(&processed_key).expect("llen");
        let held: Vec<redis::Value> = redis::cmd("XPENDING")
            .arg(h.stream())
            .arg("workers")
            .arg("-")
            .arg("+")
            .arg(100)
            .arg("victim")
            .query(&mut conn)
            .unwrap_or_default();
        if done >= 64 && held.len() >= 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    let killed_at = Instant::now();
    child.wait().expect("reaped");
    let held: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(h.stream())
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(1000)
        .arg("victim")
        .query(&mut conn)
        .expect("xpending");
    let mut held_jobs = HashSet::new();
    for (entry, ..) in &held {
        let fields: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
            .arg(h.stream())
            .arg(entry)
            .arg(entry)
            .query(&mut conn)
            .expect("xrange");
        held_jobs.insert(fields[0].1["id"].clone());
    }
    assert!(!held_jobs.is_empty(), "the victim held claims when killed");

    let starts: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let runs: Runs = Arc::default();
    let (seen, seen_starts) = (runs.clone(), starts.clone());
    let handler = move |job: PostNote, attempt: JobAttempt| {
        let (seen, starts) = (seen.clone(), seen_starts.clone());
        async move {
            starts
                .lock()
                .expect("lock")
                .entry(job.approval_id.to_string())
                .or_insert_with(Instant::now);
            record(&seen, &job, attempt);
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<(), JobError>(())
        }
    };
    let outcome = run_until_empty::<PostNote, _, _>(
        h.client.clone(),
        settings(),
        handler,
        Duration::from_secs(60),
    )
    .await
    .expect("worker runs");
    assert_eq!(outcome, DrainOutcome::Drained);

    let by_victim: Vec<String> = conn.lrange(&processed_key, 0, -1).expect("lrange");
    let runs = runs.lock().expect("lock").clone();
    let mut all: HashSet<&str> = by_victim.iter().map(String::as_str).collect();
    all.extend(runs.keys().map(String::as_str));
    assert_eq!(all.len(), total, "0 lost");
    let starts = starts.lock().expect("lock").clone();
    let delays: Vec<Duration> = held_jobs
        .iter()
        .map(|id| {
            *starts
                .get(id)
                .unwrap_or_else(|| panic!("held job {id} was re-run"))
                - killed_at
        })
        .collect();
    let twice = by_victim.iter().filter(|id| runs.contains_key(*id)).count();
    println!(
        "SIGKILL with {} held: all re-run {:?}..{:?} after the kill (visibility 2 s); {twice} ran twice",
        held_jobs.len(),
        delays.iter().min().expect("some"),
        delays.iter().max().expect("some"),
    );
    assert_eq!(h.leftovers(), (0, 0, 0));

    // The janitor removes the dead consumer (idle, nothing pending) from the group.
    assert!(h.consumers().contains(&"victim".to_owned()));
    let shutdown = CancellationToken::new();
    let janitor = QueueSettings {
        consumer_idle_limit: Duration::from_millis(100),
        ..settings()
    };
    let noop = |_job: PostNote, _attempt: JobAttempt| async { Ok::<(), JobError>(()) };
    let worker = tokio::spawn(run_worker::<PostNote, _, _>(
        h.client.clone(),
        janitor,
        noop,
        shutdown.clone(),
    ));
    let until = Instant::now() + Duration::from_secs(5);
    while h.consumers().contains(&"victim".to_owned()) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    worker.await.expect("joins").expect("clean stop");
    assert!(
        !h.consumers().contains(&"victim".to_owned()),
        "the killed consumer was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_keeps_crashing_its_workers_is_dead_lettered_by_delivery_count() {
    let h = Harness::start("crashloop").await;
    h.client.enqueue(&job("crashy")).await.expect("enqueued");
    let mut conn = h.conn();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(h.stream())
        .arg("workers")
        .arg("0")
        .query(&mut conn)
        .expect("group");
    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("crasher")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(h.stream())
        .arg(">")
        .query(&mut conn)
        .expect("claimed by the crasher");
    let entry = read.keys[0].ids[0].id.clone();
    // As if five workers had crashed while running it: delivered 5 times, idle for a minute.
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(h.stream())
        .arg("workers")
        .arg("crasher")
        .arg(0)
        .arg(&entry)
        .arg("IDLE")
        .arg(60_000)
        .arg("RETRYCOUNT")
        .arg(5)
        .query(&mut conn)
        .expect("xclaim");
    let (drained, runs) = drain_recording(&h).await.expect("worker runs");
    assert_eq!(drained, DrainOutcome::Drained);
    assert!(
        runs.lock().expect("lock").is_empty(),
        "not run a sixth time"
    );
    let letters = DeadLetters::new(&h.client)
        .list(&DeadLetterFilter::default())
        .await
        .expect("list");
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.contains("delivered 6 times"),
        "{}",
        letters[0].error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_store_is_bounded_by_count() {
    let h = Harness::start("bounded").await;
    for i in 0..5 {
        h.client
            .enqueue(&job(&format!("doomed-{i}")))
            .await
            .expect("enqueued");
    }
    let handler = |_job: PostNote, _attempt: JobAttempt| async {
        Err::<(), _>(JobError::permanent(anyhow::anyhow!("no")))
    };
    let settings = QueueSettings {
        dead_letter_max: 3,
        max_in_flight: 1,
        ..settings()
    };
    let drained = run_until_empty::<PostNote, _, _>(
        h.client.clone(),
        settings,
        handler,
        Duration::from_secs(20),
    )
    .await
    .expect("worker runs");
    assert_eq!(drained, DrainOutcome::Drained);
    let dead = DeadLetters::new(&h.client);
    assert_eq!(dead.count().await.expect("count"), 3);
    assert_eq!(
        h.client.depth(QUEUE).await.expect("depth").dead,
        3,
        "per-queue count follows trimming"
    );
    let kept: HashSet<String> = dead
        .list(&DeadLetterFilter::default())
        .await
        .expect("list")
        .into_iter()
        .map(|l| l.job_id)
        .collect();
    let newest: HashSet<String> = (2..5).map(|i| format!("doomed-{i}")).collect();
    assert_eq!(kept, newest, "the oldest were trimmed");
    let one = dead
        .list(&DeadLetterFilter {
            limit: Some(1),
            ..DeadLetterFilter::default()
        })
        .await
        .expect("list");
    dead.purge(&one[0].id).await.expect("purge");
    assert_eq!(dead.count().await.expect("count"), 2);
    assert_eq!(dead.retry_all(Some(QUEUE)).await.expect("retry all"), 2);
    assert_eq!(h.client.depth(QUEUE).await.expect("depth").pending, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retryable_error_is_retried_with_backoff_then_dead_lettered() {
    let h = Harness::start("retry").await;
    h.client.enqueue(&job("flaky")).await.expect("enqueued");
    let times: Arc<Mutex<Vec<(JobAttempt, Instant)>>> = Arc::default();
    let seen = times.clone();
    let handler = move |_job: PostNote, attempt: JobAttempt| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("lock").push((attempt, Instant::now()));
            Err::<(), _>(JobError::retryable(anyhow::anyhow!("upstream 503")))
        }
    };
    let outcome = run_until_empty::<PostNote, _, _>(
        h.client.clone(),
        settings(),
        handler,
        Duration::from_secs(20),
    )
    .await
    .expect("worker runs");
    assert_eq!(outcome, DrainOutcome::Drained);
    let times = times.lock().expect("lock").clone();
    let attempts: Vec<(u32, u32, bool)> = times
        .iter()
        .map(|(a, _)| (a.attempt, a.max_attempts, a.is_last()))
        .collect();
    assert_eq!(attempts, vec![(1, 3, false), (2, 3, false), (3, 3, true)]);
    for pair in times.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= Duration::from_millis(20),
            "backoff at least the base delay"
        );
    }
    let dead = DeadLetters::new(&h.client);
    let letters = dead.list(&DeadLetterFilter::default()).await.expect("list");
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        (
            letter.queue.as_str(),
            letter.job_id.as_str(),
            letter.attempts,
            letter.permanent
        ),
        (QUEUE, "flaky", 3, false)
    );
    assert!(letter.error.contains("upstream 503"), "{}", letter.error);
    assert_eq!(
        serde_json::from_str::<PostNote>(&letter.payload).expect("payload kept"),
        job("flaky")
    );
    assert!(letter.first_failed_at_ms <= letter.last_failed_at_ms && letter.first_failed_at_ms > 0);
    let depth = h.client.depth(QUEUE).await.expect("depth");
    assert_eq!(
        (depth.pending, depth.running, depth.scheduled, depth.dead),
        (0, 0, 0, 1)
    );
    assert_eq!(h.leftovers(), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_dead_lettered_after_one_attempt_and_a_redrive_reruns_it() {
    let h = Harness::start("permanent").await;
    h.client
        .enqueue(&job("bad-request"))
        .await
        .expect("enqueued");
    h.client.enqueue(&job("fine")).await.expect("enqueued");
    let runs: Runs = Arc::default();
    let healed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (seen, fixed) = (runs.clone(), healed.clone());
    let handler = move |job: PostNote, attempt: JobAttempt| {
        let (seen, fixed) = (seen.clone(), fixed.clone());
        async move {
            record(&seen, &job, attempt);
            if job.approval_id == "bad-request" && !fixed.load(std::sync::atomic::Ordering::SeqCst)
            {
                return Err(JobError::permanent(anyhow::anyhow!("422 unprocessable")));
            }
            Ok(())
        }
    };
    let drained = run_until_empty::<PostNote, _, _>(
        h.client.clone(),
        settings(),
        handler.clone(),
        Duration::from_secs(20),
    )
    .await
    .expect("worker runs");
    assert_eq!(drained, DrainOutcome::Drained);
    assert_eq!(
        runs.lock().expect("lock")["bad-request"].len(),
        1,
        "no retry for a permanent error"
    );
    let dead = DeadLetters::new(&h.client);
    let filter = DeadLetterFilter {
        queue: Some(QUEUE.into()),
        error_contains: Some("UNPROCESSABLE".into()),
        limit: None,
    };
    let letters = dead.list(&filter).await.expect("list");
    assert_eq!(letters.len(), 1);
    assert!(letters[0].permanent && letters[0].attempts == 1);
    assert_eq!(
        dead.get(&letters[0].id).await.expect("get").as_ref(),
        Some(&letters[0])
    );
    let none = DeadLetterFilter {
        error_contains: Some("timeout".into()),
        ..DeadLetterFilter::default()
    };
    assert!(dead.list(&none).await.expect("list").is_empty());

    healed.store(true, std::sync::atomic::Ordering::SeqCst);
    dead.retry(&letters[0].id).await.expect("redrive");
    assert!(
        dead.retry(&letters[0].id).await.is_err(),
        "a redriven letter is gone"
    );
    assert_eq!(dead.count().await.expect("count"), 0);
    let drained = run_until_empty::<PostNote, _, _>(
        h.client.clone(),
        settings(),
        handler,
        Duration::from_secs(20),
    )
    .await
    .expect("worker runs");
    assert_eq!(drained, DrainOutcome::Drained);
    let runs = runs.lock().expect("lock").clone();
    assert_eq!(runs["bad-request"].len(), 2, "the redrive re-ran it");
    assert_eq!(
        runs["bad-request"][1].attempt, 1,
        "a redrive starts a fresh attempt count"
    );
    assert_eq!(h.leftovers(), (0, 0, 0));
    assert_eq!(h.client.depth(QUEUE).await.expect("depth").dead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_failed_attempt_and_the_worker_keeps_running() {
    let h = Harness::start("panic").await;
    h.client
        .enqueue(&job("panics-once"))
        .await
        .expect("enqueued");
    for i in 0..20 {
        h.client
            .enqueue(&job(&format!("ok-{i}")))
            .await
            .expect("enqueued");
    }
    let runs: Runs = Arc::default();
    let seen = runs.clone();
    let handler = move |job: PostNote, attempt: JobAttempt| {
        let seen = seen.clone();
        async move {
            record(&seen, &job, attempt);
            if job.approval_id == "panics-once" && attempt.attempt == 1 {
                panic!("handler bug");
            }
            Ok::<(), JobError>(())
        }
    };
    let drained = run_until_empty::<PostNote, _, _>(
        h.client.clone(),
        settings(),
        handler,
        Duration::from_secs(20),
    )
    .await
    .expect("worker survives the panic");
    assert_eq!(drained, DrainOutcome::Drained);
    let runs = runs.lock().expect("lock").clone();
    assert_eq!(runs.len(), 21, "every job ran");
    assert_eq!(
        runs["panics-once"]
            .iter()
            .map(|a| a.attempt)
            .collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(DeadLetters::new(&h.client).count().await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_entry_is_dead_lettered_and_the_worker_keeps_running() {
    let h = Harness::start("undecodable").await;
    let mut conn = h.conn();
    let _: String = conn
        .xadd(
            h.stream(),
            "*",
            &[("id", "garbage"), ("a", "0"), ("p", "{not json")],
        )
        .expect("xadd");
    let _: String = conn
        .xadd(h.stream(), "*", &[("unexpected", "fields")])
        .expect("xadd");
    for i in 0..5 {
        h.client
            .enqueue(&job(&format!("ok-{i}")))
            .await
            .expect("enqueued");
    }
    let (drained, runs) = drain_recording(&h).await.expect("worker survives");
    assert_eq!(drained, DrainOutcome::Drained);
    assert_eq!(runs.lock().expect("lock").len(), 5);
    let dead = DeadLetters::new(&h.client);
    let letters = dead.list(&DeadLetterFilter::default()).await.expect("list");
    assert_eq!(letters.len(), 2);
    let garbage = letters
        .iter()
        .find(|l| l.job_id == "garbage")
        .expect("the bad JSON entry");
    assert!(
        garbage.permanent
            && garbage.payload == "{not json"
            && garbage.error.contains("undecodable")
    );
    assert!(
        letters.iter().any(|l| l.payload.contains("unexpected")),
        "the field-less entry keeps its fields"
    );
    assert_eq!(dead.purge_all().await.expect("purge"), 2);
    assert_eq!(dead.count().await.expect("count"), 0);
    assert_eq!(h.leftovers(), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_jobs_and_leaves_the_pel_empty() {
    let h = Harness::start("shutdown").await;
    enqueue_plain(&h.client, (0..100).map(|i| format!("s-{i}")).collect()).await;
    let started: Arc<Mutex<HashSet<String>>> = Arc::default();
    let finished: Arc<Mutex<HashSet<String>>> = Arc::default();
    let (s, f) = (started.clone(), finished.clone());
    let handler = move |job: PostNote, _attempt: JobAttempt| {
        let (s, f) = (s.clone(), f.clone());
        async move {
            s.lock().expect("lock").insert(job.approval_id.to_string());
            tokio::time::sleep(Duration::from_millis(300)).await;
            f.lock()
                .expect("lock")
                .insert(job.approval_id.into_string());
            Ok::<(), JobError>(())
        }
    };
    let shutdown = CancellationToken::new();
    let settings = QueueSettings {
        max_in_flight: 8,
        ..settings()
    };
    let worker = tokio::spawn(run_worker::<PostNote, _, _>(
        h.client.clone(),
        settings,
        handler,
        shutdown.clone(),
    ));
    while started.lock().expect("lock").len() < 8 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stop = Instant::now();
    shutdown.cancel();
    worker.await.expect("joins").expect("clean stop");
    let stopped_in = stop.elapsed();
    let started = started.lock().expect("lock");
    let finished = finished.lock().expect("lock");
    assert_eq!(*started, *finished, "every started job finished");
    let (len, pending, delayed) = h.leftovers();
    assert_eq!((pending, delayed), (0, 0), "nothing left claimed");
    assert_eq!(
        len as usize,
        100 - finished.len(),
        "the rest is still queued"
    );
    assert!(h.consumers().is_empty(), "the consumer left the group");
    println!(
        "graceful stop with {} in flight took {stopped_in:?}",
        started.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_renewal_keeps_a_long_job_from_running_twice() {
    let h = Harness::start("lease").await;
    for i in 0..4 {
        h.client
            .enqueue(&job(&format!("long-{i}")))
            .await
            .expect("enqueued");
    }
    let runs: Runs = Arc::default();
    let seen = runs.clone();
    let handler = move |job: PostNote, attempt: JobAttempt| {
        let seen = seen.clone();
        async move {
            record(&seen, &job, attempt);
            tokio::time::sleep(Duration::from_millis(2_000)).await;
            Ok::<(), JobError>(())
        }
    };
    // Visibility 600 ms: without renewal, the second consumer would take every job after 0.6 s.
    let settings = QueueSettings {
        visibility_timeout: Duration::from_millis(600),
        ..settings()
    };
    let first = CancellationToken::new();
    let a = tokio::spawn(run_worker::<PostNote, _, _>(
        h.client.clone(),
        settings.clone(),
        handler.clone(),
        first.clone(),
    ));
    while runs.lock().expect("lock").len() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = run_until_empty::<PostNote, _, _>(
        h.client.clone(),
        settings,
        handler,
        Duration::from_secs(20),
    )
    .await
    .expect("second worker runs");
    assert_eq!(drained, DrainOutcome::Drained);
    first.cancel();
    a.await.expect("joins").expect("clean stop");
    let runs = runs.lock().expect("lock");
    assert!(
        runs.values().all(|r| r.len() == 1),
        "each long job ran once: {runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_enqueue_leaves_no_dedupe_key_behind_so_the_retry_is_not_a_duplicate() {
    let h = Harness::start("enqueue-atomic").await;
    let job = PostNote {
        meta: JobMeta::new("d-atomic".parse().expect("a valid delivery id"), 0),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(7),
        approval_id: "1-7-70".parse().expect("a valid approval id"),
    };
    // The queue's stream key is taken by a value of another type: XADD would fail.
    let mut conn = h.conn();
    let _: () = conn.set(h.stream(), "not a stream").expect("set");
    let failed = h.client.enqueue(&job).await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.to_string().contains("WRONGTYPE")),
        "{failed:?}"
    );
    let dedupe_keys: Vec<String> = conn.keys(format!("{}:dedupe:*", h.prefix)).expect("keys");
    assert!(
        dedupe_keys.is_empty(),
        "no dedupe key without its job: {dedupe_keys:?}"
    );
    // Once the key is fixed, the same enqueue is queued, not called a duplicate.
    let _: () = conn.del(h.stream()).expect("del");
    let retried = h.client.enqueue(&job).await.expect("enqueue");
    assert_eq!(retried, copydesk::queue::EnqueueOutcome::Queued);
    let len: u64 = conn.xlen(h.stream()).expect("xlen");
    assert_eq!(len, 1);
}
