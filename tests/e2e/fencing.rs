//! One owner per job (issue 12 §3): a worker process that stalls past the visibility timeout
//! (SIGSTOP) while running `send_reply`, and resumes (SIGCONT) after another worker reclaimed
//! the job and sent the reply, must not send a second public reply.
//!
//! The queue layer's side is tested on its own too: a consumer whose entry was reclaimed stops
//! the job and neither takes the entry back nor settles it.
//!
//! Each trial stops the worker at the worst moment: Chatwoot has already answered its "is our
//! reply there yet?" read (with "no": the answer is delayed, the stop lands while it is in
//! flight), so on resuming, only the lease fence stands between it and a duplicate post.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use copydesk::approvals::{Action, ApprovalStore, DecideOutcome, Decision, DraftDoc, Priority};
use copydesk::domain::{AccountId, ConversationId};
use copydesk::jobs::{Job, JobMeta, PostNote, SendReply};
use copydesk::queue::{run_worker, JobAttempt, JobError, QueueSettings};
use copydesk_testkit::fake_chatwoot::seed::DEMO_WEB_INBOX;
use copydesk_testkit::fake_chatwoot::{Endpoint, FakeConversation, Fault};
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_testkit::process::{role_command, TestProcess};
use copydesk_testkit::testbed::TestBed;
use copydesk_testkit::wait::wait_until;
use tokio_util::sync::CancellationToken;

const TRIALS: i64 = 50;
/// Short, so a trial takes well under a second.
const VISIBILITY_MS: u64 = 400;
/// Generous cap on each wait (no timing assertion: this only keeps a hung run from hanging).
const WAIT: Duration = Duration::from_secs(60);
const FIRST_CONVERSATION: i64 = 30_000;

fn replies_worker(env: &HashMap<String, String>) -> TestProcess {
    TestProcess::spawn(
        role_command(env!("CARGO_BIN_EXE_copydesk-fleet"), "notes", env)
            .env("COPYDESK_VISIBILITY_TIMEOUT_MS", VISIBILITY_MS.to_string())
            .env("COPYDESK_RECLAIM_INTERVAL_MS", "100")
            .env("COPYDESK_CLAIM_BLOCK_MS", "100")
            .env("COPYDESK_MAINTENANCE_INTERVAL_MS", "50")
            .env("COPYDESK_SHUTDOWN_DEADLINE_MS", "10000"),
        "a replies worker",
    )
}

async fn until(what: &str, done: impl FnMut() -> bool) {
    wait_until(what, WAIT, done).await;
}

/// The consumer holding the only pending `send_reply` entry, if one is held.
fn holder(p: &Pipeline) -> Option<String> {
    let mut conn = p.redis.connection();
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(p.queue.keys().stream(SendReply::QUEUE))
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(10)
        .query(&mut conn)
        .ok()?;
    pending.into_iter().next().map(|p| p.1)
}

/// A customer message in its own conversation, an approved item for it, and the `send_reply`
/// job the ops API would queue; returns the conversation id.
async fn approved_reply(p: &Pipeline, approvals: &ApprovalStore, n: i64) -> (i64, SendReply) {
    let conversation_id = FIRST_CONVERSATION + n;
    p.chatwoot
        .add_conversation(FakeConversation::new(conversation_id, DEMO_WEB_INBOX, 11));
    let message = p
        .chatwoot
        .add_incoming_message(conversation_id, "Do you ship to Canada?")
        .expect("the conversation was just added");
    let account_id = p.chatwoot.account_id();
    let now = copydesk::approvals::now_ms();
    let doc = DraftDoc {
        id: ApprovalStore::approval_id(account_id, conversation_id, message.id),
        account_id,
        conversation_id,
        message_id: message.id,
        customer_message: "Do you ship to Canada?".into(),
        draft: "Yes, we ship to Canada.".into(),
        confidence: 90,
        action: Action::Send,
        priority: Priority::Normal,
        sentiment: "neutral".into(),
        sources: Vec::new(),
        degraded: Vec::new(),
        placeholder: false,
        safety: false,
        vip: false,
        suspicious: Vec::new(),
        drafter: "extractive".into(),
        delivery_id: format!("fencing-{n}"),
        received_at_ms: now,
        created_at_ms: now,
        traceparent: None,
        tracestate: None,
    };
    approvals.create(&doc).await.expect("item stored");
    let decided = approvals
        .decide(
            &doc.id,
            Decision::Approve {
                operator: "ana".into(),
            },
        )
        .await
        .expect("decide");
    assert!(matches!(decided, DecideOutcome::Applied(_)), "{decided:?}");
    let job = SendReply {
        meta: JobMeta::new(
            format!("ops:{}", doc.id)
                .parse()
                .expect("a valid delivery id"),
            now,
        ),
        account_id: AccountId::new(account_id),
        conversation_id: ConversationId::new(conversation_id),
        approval_id: doc.id.parse().expect("a valid approval id"),
    };
    (conversation_id, job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_resumed_after_its_job_was_reclaimed_never_sends_a_second_reply() {
    let p = PipelineOptions::default().roles(Vec::new()).start().await;
    let approvals = ApprovalStore::for_queue(&p.queue);
    let mut workers = [replies_worker(&p.env), replies_worker(&p.env)];
    let mut conversations = Vec::new();
    let mut stalls = 0;
    for n in 0..TRIALS {
        let (conversation_id, job) = approved_reply(&p, &approvals, n).await;
        conversations.push(conversation_id);
        // The holder's read of the conversation's messages is answered late, with what was
        // there when it arrived: no reply yet.
        p.chatwoot.fail_next_on(
            Endpoint::ListMessages,
            1,
            Fault::Delay(Duration::from_millis(200)),
        );
        p.queue.enqueue(&job).await.expect("enqueue");
        // The read has arrived (and taken its delay) once no fault is queued any more.
        until("the holder reads the messages", || {
            p.chatwoot.queued_faults() == 0
        })
        .await;
        let consumer = holder(&p).expect("the reading worker holds the entry");
        let stalled = workers
            .iter()
            .position(|w| consumer.contains(&format!("-{}-", w.id())))
            .expect("the holder is one of the two workers");
        workers[stalled].signal("-STOP");
        stalls += 1;
        // Past the visibility timeout the other worker reclaims the job and sends the reply.
        until("the other worker sends the reply", || {
            !p.chatwoot.public_replies(conversation_id).is_empty()
        })
        .await;
        workers[stalled].signal("-CONT");
    }
    // A graceful stop lets every resumed attempt run to its end before we count.
    for worker in &workers {
        worker.sigterm();
    }
    for worker in &mut workers {
        worker.expect_exit(WAIT);
    }
    let duplicated: Vec<(i64, usize)> = conversations
        .iter()
        .map(|c| (*c, p.chatwoot.public_replies(*c).len()))
        .filter(|(_, replies)| *replies != 1)
        .collect();
    assert_eq!(stalls, TRIALS);
    assert!(
        duplicated.is_empty(),
        "{} of {TRIALS} conversations without exactly one public reply (conversation, replies): {duplicated:?}",
        duplicated.len()
    );
}

/// Sets its flag when dropped before [`Unfinished::finish`]: the job's future was cancelled.
struct Unfinished(Arc<AtomicBool>, bool);

impl Unfinished {
    fn finish(mut self) {
        self.1 = true;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_whose_entry_was_reclaimed_stops_the_job_and_neither_renews_nor_settles_it() {
    let bed = TestBed::start("fence");
    let client = bed.queue().await;
    let job = PostNote {
        meta: JobMeta::new("d-fence".parse().expect("a valid delivery id"), 0),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(2),
        approval_id: "1-2-3".parse().expect("a valid approval id"),
    };
    client.enqueue(&job).await.expect("enqueue");
    let started = Arc::new(AtomicBool::new(false));
    let cancelled = Arc::new(AtomicBool::new(false));
    let (s, c) = (started.clone(), cancelled.clone());
    let handler = move |_job: PostNote, _attempt: JobAttempt| {
        let (s, c) = (s.clone(), c.clone());
        async move {
            let guard = Unfinished(c, false);
            s.store(true, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(10)).await;
            guard.finish();
            Ok::<(), JobError>(())
        }
    };
    let settings = QueueSettings {
        visibility_timeout: Duration::from_millis(300),
        block: Duration::from_millis(50),
        reclaim_interval: Duration::from_millis(50),
        maintenance_interval: Duration::from_millis(20),
        consumer_name: Some("first".into()),
        shutdown_deadline: Duration::from_secs(1),
        ..QueueSettings::default()
    };
    let stop = CancellationToken::new();
    let worker = tokio::spawn(run_worker::<PostNote, _, _>(
        client.clone(),
        settings,
        handler,
        stop.clone(),
    ));
    until("the job starts", || started.load(Ordering::SeqCst)).await;
    // A successor takes the entry, as its XAUTOCLAIM would after the first worker stalled.
    let stream = client.keys().stream(PostNote::QUEUE);
    let mut conn = bed.redis.connection();
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .expect("xrange");
    let entry = entries[0].0.clone();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&stream)
        .arg("workers")
        .arg("successor")
        .arg(0)
        .arg(&entry)
        .arg("JUSTID")
        .query(&mut conn)
        .expect("xclaim");
    until("the first worker stops the job", || {
        cancelled.load(Ordering::SeqCst)
    })
    .await;
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(10)
        .query(&mut conn)
        .expect("xpending");
    assert_eq!(
        pending.iter().map(|p| p.1.as_str()).collect::<Vec<_>>(),
        ["successor"],
        "the renewal did not take the entry back"
    );
    stop.cancel();
    worker.await.expect("joins").expect("clean stop");
    let len: u64 = redis::cmd("XLEN")
        .arg(&stream)
        .query(&mut conn)
        .expect("xlen");
    assert_eq!(
        len, 1,
        "the first worker did not settle its successor's entry"
    );
}
