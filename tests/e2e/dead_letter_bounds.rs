//! The dead-letter store's bounds against a private redis-server: bytes as well as count, an
//! approved reply not yet sent is never trimmed, and `retry --all` re-drives each letter once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use copydesk::domain::{AccountId, ConversationId, MessageId};
use copydesk::jobs::{ContactRef, JobMeta, LookupKnowledge, PostNote, SendReply};
use copydesk::queue::{
    run_until_empty, DeadLetterFilter, DeadLetters, DrainOutcome, JobAttempt, JobError,
    QueueClient, QueueSettings,
};
use copydesk_testkit::testbed::TestBed;

fn settings() -> QueueSettings {
    QueueSettings {
        visibility_timeout: Duration::from_secs(2),
        block: Duration::from_millis(100),
        reclaim_interval: Duration::from_millis(100),
        max_in_flight: 1,
        max_attempts: 1,
        maintenance_interval: Duration::from_millis(20),
        ..QueueSettings::default()
    }
}

fn meta(id: &str) -> JobMeta {
    JobMeta::new(format!("d-{id}").parse().expect("a valid delivery id"), 0)
}

fn note(id: &str) -> PostNote {
    PostNote {
        meta: meta(id),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(2),
        approval_id: id.parse().expect("a valid approval id"),
    }
}

fn question(message: i64, text: &str) -> LookupKnowledge {
    LookupKnowledge {
        meta: meta(&format!("q-{message}")),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(2),
        message_id: MessageId::new(message),
        inbox_id: None,
        content: text.to_owned(),
        contact: ContactRef::default(),
        conversation_attributes: serde_json::Map::new(),
        created_at: 0,
    }
}

fn reply(id: &str) -> SendReply {
    SendReply {
        meta: meta(id),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(2),
        approval_id: id.parse().expect("a valid approval id"),
    }
}

/// Runs a worker for `J` whose every attempt fails for good, until its queue is empty.
async fn fail_all<J: copydesk::jobs::Job>(client: &QueueClient, settings: QueueSettings) {
    let handler = |_job: J, _attempt: JobAttempt| async {
        Err::<(), _>(JobError::permanent(anyhow::anyhow!("chatwoot said 422")))
    };
    let drained =
        run_until_empty::<J, _, _>(client.clone(), settings, handler, Duration::from_secs(30))
            .await
            .expect("worker runs");
    assert_eq!(drained, DrainOutcome::Drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_reply_survives_a_dead_letter_flood_over_the_bound() {
    let bed = TestBed::start("dead-flood");
    let client = bed.queue().await;
    let dead = DeadLetters::new(&client);
    let bounded = QueueSettings {
        dead_letter_max: 5,
        ..settings()
    };
    // An approved reply that Chatwoot refused: parked, owed to the customer.
    client
        .enqueue(&reply("approved-1"))
        .await
        .expect("enqueued");
    fail_all::<SendReply>(&client, bounded.clone()).await;
    assert_eq!(dead.count().await.expect("count"), 1);

    // Then a flood of failing notes, four times the bound.
    for i in 0..20 {
        client
            .enqueue(&note(&format!("n-{i}")))
            .await
            .expect("enqueued");
    }
    fail_all::<PostNote>(&client, bounded).await;

    let letters = dead
        .list(&DeadLetterFilter {
            limit: Some(100),
            ..DeadLetterFilter::default()
        })
        .await
        .expect("list");
    assert!(
        letters
            .iter()
            .any(|l| l.queue == "send_reply" && l.job_id == "approved-1"),
        "the parked reply is kept: {letters:?}"
    );
    assert_eq!(
        letters.len(),
        5,
        "the notes were trimmed to the bound around it"
    );
    assert_eq!(
        client.depth("post_note").await.expect("depth").dead,
        4,
        "per-queue counts follow the trimming"
    );
    // Only an operator removes it.
    let parked = letters
        .iter()
        .find(|l| l.queue == "send_reply")
        .expect("parked");
    dead.purge(&parked.id).await.expect("purge");
    assert_eq!(dead.count().await.expect("count"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_bounded_by_bytes_too() {
    let bed = TestBed::start("dead-bytes");
    let client = bed.queue().await;
    let dead = DeadLetters::new(&client);
    // Each letter's record holds a customer message of 20 KB.
    for i in 0..12 {
        client
            .enqueue(&question(i, &"x".repeat(20_000)))
            .await
            .expect("enqueued");
    }
    fail_all::<LookupKnowledge>(
        &client,
        QueueSettings {
            dead_letter_max_bytes: 100_000,
            ..settings()
        },
    )
    .await;
    let kept = dead.count().await.expect("count");
    assert_eq!(
        client.depth("lookup_knowledge").await.expect("depth").dead,
        kept as u64
    );
    let letters = dead.list(&DeadLetterFilter::default()).await.expect("list");
    let bytes: usize = letters
        .iter()
        .map(|l| serde_json::to_string(l).expect("encodes").len())
        .sum();
    let one = bytes / kept.max(1);
    assert!(bytes <= 100_000, "{kept} letters, {bytes} bytes kept");
    assert!(
        bytes + one > 100_000,
        "no more trimmed than needed: {kept} letters, {bytes} bytes"
    );
    assert!((2..12).contains(&kept), "{kept}");
    // The newest are the ones kept.
    assert!(
        letters.iter().any(|l| l.job_id == "1:2:11"),
        "the newest is kept"
    );
    assert!(
        !letters.iter().any(|l| l.job_id == "1:2:0"),
        "the oldest is trimmed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_all_redrives_each_letter_once_even_when_it_fails_again_at_once() {
    let bed = TestBed::start("dead-retry-all");
    let client = bed.queue().await;
    let dead = DeadLetters::new(&client);
    for i in 0..3 {
        client
            .enqueue(&note(&format!("again-{i}")))
            .await
            .expect("enqueued");
    }
    fail_all::<PostNote>(&client, settings()).await;
    assert_eq!(dead.count().await.expect("count"), 3);

    // A worker that fails every job at once is running while `retry_all` re-drives: each
    // re-driven job is dead-lettered again within milliseconds.
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let handler = move |_job: PostNote, _attempt: JobAttempt| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(JobError::permanent(anyhow::anyhow!("still 422")))
        }
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(copydesk::queue::run_worker::<PostNote, _, _>(
        client.clone(),
        settings(),
        handler,
        shutdown.clone(),
    ));
    let redriven = tokio::time::timeout(Duration::from_secs(20), dead.retry_all(None))
        .await
        .expect("retry_all returns (it does not chase letters that fail again)")
        .expect("retry_all");
    assert_eq!(redriven, 3);
    copydesk_testkit::wait::wait_until_async("the three re-runs", Duration::from_secs(20), || {
        let attempts = attempts.clone();
        async move { attempts.load(Ordering::SeqCst) >= 3 }
    })
    .await;
    shutdown.cancel();
    worker.await.expect("worker task").expect("worker");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "each letter ran once more"
    );
    assert_eq!(dead.count().await.expect("count"), 3, "and is parked again");
}
