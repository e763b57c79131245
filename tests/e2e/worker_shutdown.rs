//! Graceful shutdown of a worker process on SIGTERM: it stops claiming, finishes in-flight
//! jobs within `COPYDESK_SHUTDOWN_DEADLINE_MS` and exits 0; a job still running at the
//! deadline is not lost: another worker finishes it after the visibility timeout.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use copydesk::jobs::{Job, PostNote};
use copydesk_testkit::fake_chatwoot::{Endpoint, Fault};
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_workers::runtime::Role;

const WAIT: Duration = Duration::from_secs(60);

fn notes_process(env: &HashMap<String, String>, deadline_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_copydesk-fleet"))
        .args(["run", "--role", "notes"])
        .envs(env)
        .env("COPYDESK_VISIBILITY_TIMEOUT_MS", "2000")
        .env("COPYDESK_RECLAIM_INTERVAL_MS", "200")
        .env("COPYDESK_SHUTDOWN_DEADLINE_MS", deadline_ms.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the copydesk-fleet binary runs")
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            panic!("the worker did not exit within {within:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pipeline without the notes role, a drafted message whose note post will hang in
/// Chatwoot for `hang`, and a notes process that has claimed it.
async fn note_in_flight(hang: Duration, deadline_ms: u64) -> (Pipeline, String, Child) {
    let p = Pipeline::start(PipelineOptions {
        roles: vec![Role::KNOWLEDGE, Role::DRAFTER],
        ..PipelineOptions::default()
    })
    .await
    .expect("pipeline");
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 1, Fault::Delay(hang));
    let message = p.chatwoot.incoming_messages(101)[0].clone();
    assert_eq!(p.deliver_message_webhook(101, message.id).await, 202);
    let id = p.approval_id(101, message.id);
    assert!(p.wait_for(&id, WAIT, |_| true).await.is_some());
    let worker = notes_process(&p.env, deadline_ms);
    let until = Instant::now() + WAIT;
    while p.queue.depth(PostNote::QUEUE).await.expect("depth").running == 0 {
        assert!(Instant::now() < until, "the notes process claims the job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (p, id, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_the_in_flight_job_finish_then_exits_zero() {
    let (p, id, mut worker) = note_in_flight(Duration::from_millis(1500), 10_000).await;
    sigterm(&worker);
    let status = wait_exit(&mut worker, Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    let item = p.approvals.get(&id).await.expect("get").expect("item");
    assert!(
        item.note_id.is_some(),
        "the in-flight note was finished before exiting"
    );
    assert_eq!(p.chatwoot.private_notes(101).len(), 1);
    let depth = p.queue.depth(PostNote::QUEUE).await.expect("depth");
    assert!(depth.is_idle(), "nothing left behind: {depth:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_still_running_at_the_deadline_is_finished_by_the_next_worker() {
    let (p, id, mut worker) = note_in_flight(Duration::from_secs(4), 300).await;
    sigterm(&worker);
    let status = wait_exit(&mut worker, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    let mut successor = notes_process(&p.env, 10_000);
    let item = p.wait_for_note(&id, WAIT).await;
    let _ = successor.kill();
    let _ = successor.wait();
    assert!(
        item.is_some(),
        "the abandoned job was reclaimed and finished"
    );
    // The first post reached Chatwoot after its delay; the successor found it by its key.
    assert_eq!(p.chatwoot.private_notes(101).len(), 1);
}
