//! Graceful shutdown of a worker process on SIGTERM: it stops claiming, finishes in-flight
//! jobs within `COPYDESK_SHUTDOWN_DEADLINE_MS` and exits 0; a job still running at the
//! deadline is not lost: another worker finishes it after the visibility timeout.

use std::collections::HashMap;
use std::time::Duration;

use copydesk::jobs::{Job, PostNote};
use copydesk_testkit::fake_chatwoot::{Endpoint, Fault};
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_testkit::process::{role_command, TestProcess};
use copydesk_testkit::wait::wait_until_async;
use copydesk_workers::runtime::Role;

const WAIT: Duration = Duration::from_secs(60);

fn notes_process(env: &HashMap<String, String>, deadline_ms: u64) -> TestProcess {
    TestProcess::spawn(
        role_command(env!("CARGO_BIN_EXE_copydesk-fleet"), "notes", env)
            .env("COPYDESK_VISIBILITY_TIMEOUT_MS", "2000")
            .env("COPYDESK_RECLAIM_INTERVAL_MS", "200")
            .env("COPYDESK_SHUTDOWN_DEADLINE_MS", deadline_ms.to_string()),
        "the notes worker",
    )
}

/// A pipeline without the notes role, a drafted message whose note post will hang in
/// Chatwoot for `hang`, and a notes process that has claimed it.
async fn note_in_flight(hang: Duration, deadline_ms: u64) -> (Pipeline, String, TestProcess) {
    let p = PipelineOptions::default()
        .roles(vec![Role::KNOWLEDGE, Role::DRAFTER])
        .start()
        .await;
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 1, Fault::Delay(hang));
    let message = p.chatwoot.incoming_messages(101)[0].clone();
    assert_eq!(p.deliver_message_webhook(101, message.id).await, 202);
    let id = p.approval_id(101, message.id);
    assert!(p.wait_for(&id, WAIT, |_| true).await.is_some());
    let worker = notes_process(&p.env, deadline_ms);
    wait_until_async("the notes process claims the job", WAIT, || async {
        p.queue.depth(PostNote::QUEUE).await.expect("depth").running > 0
    })
    .await;
    (p, id, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_the_in_flight_job_finish_then_exits_zero() {
    let (p, id, mut worker) = note_in_flight(Duration::from_millis(1500), 10_000).await;
    let status = worker.terminate(Duration::from_secs(15));
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
    let status = worker.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    let mut successor = notes_process(&p.env, 10_000);
    let item = p.wait_for_note(&id, WAIT).await;
    successor.kill();
    assert!(
        item.is_some(),
        "the abandoned job was reclaimed and finished"
    );
    // The first post reached Chatwoot after its delay; the successor found it by its key.
    assert_eq!(p.chatwoot.private_notes(101).len(), 1);
}
