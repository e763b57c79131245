//! Reconciliation: customer messages whose webhook Chatwoot never delivered (the ingress was
//! down; Chatwoot drops a failed delivery) are found by the sweep and drafted exactly once;
//! what did arrive is not drafted again; a conversation resolved during the outage is brought
//! up to date without a draft; a message older than the window is listed, not drafted.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use copydesk::chatwoot::ConversationStatus;
use copydesk::reconcile::ReconcileStore;
use copydesk_testkit::fake_chatwoot::seed::DEMO_WEB_INBOX;
use copydesk_testkit::fake_chatwoot::{Endpoint, FakeConversation, Fault, Seed};
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_testkit::wait::wait_until_async;
use copydesk_workers::jobs::lifecycle_store::LifecycleStore;
use copydesk_workers::lifecycle::Status;
use copydesk_workers::runtime::{Fleet, Role};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(90);
const INTERVAL_MS: u64 = 1500;
/// The demo contact every test conversation belongs to.
const CONTACT: i64 = 11;

/// A seed with the demo's agents, teams and contacts but no conversations.
fn empty_demo() -> Seed {
    let mut seed = Seed::demo();
    seed.conversations.clear();
    seed
}

async fn pipeline(window_secs: &str) -> Pipeline {
    PipelineOptions {
        seed: empty_demo(),
        ops: true,
        ..PipelineOptions::default()
    }
    .env(&[
        ("COPYDESK_RECONCILE_INTERVAL_MS", &INTERVAL_MS.to_string()),
        ("COPYDESK_RECONCILE_WINDOW_SECS", window_secs),
        ("COPYDESK_RECONCILE_BACKOFF_MS", "50"),
    ])
    .start()
    .await
}

/// The reconciler role as its own fleet (it can be stopped and started like a deployment).
struct Sweep {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Sweep {
    async fn start(p: &Pipeline) -> Self {
        let fleet = Fleet::build(&[Role::RECONCILER], &p.env)
            .await
            .expect("the reconciler builds");
        let stop = CancellationToken::new();
        let task = tokio::spawn(fleet.run(stop.clone()));
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("the reconciler task")
            .expect("a clean stop");
    }
}

/// Whether message `message` of `conversation` has an approval item (a draft).
async fn has_draft(p: &Pipeline, conversation: i64, message: i64) -> bool {
    p.approvals
        .get(&p.approval_id(conversation, message))
        .await
        .expect("store")
        .is_some()
}

fn now_ms() -> i64 {
    copydesk::domain::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_lost_while_the_ingress_is_down_are_drafted_once_each() {
    let mut p = pipeline("21600").await;
    let store = ReconcileStore::for_queue(&p.queue);
    let account = p.chatwoot.account_id();
    for id in [201, 202, 203, 210] {
        p.chatwoot
            .add_conversation(FakeConversation::new(id, DEMO_WEB_INBOX, CONTACT));
    }
    // Before the outage: webhooks arrive and are drafted.
    let mut delivered = Vec::new();
    for id in [201, 202, 203, 210] {
        let (message, status) = p.customer_writes(id, "Do you ship to Canada?").await;
        assert_eq!(status, 202);
        delivered.push((id, message));
    }
    for (id, message) in &delivered {
        p.wait_for_note(&p.approval_id(*id, *message), WAIT)
            .await
            .expect("a delivered message is drafted");
    }
    let sweep = Sweep::start(&p).await;
    wait_until_async("a first pass sets the watermark", WAIT, || async {
        matches!(store.watermark(account).await, Ok(Some(_)))
    })
    .await;

    // The outage: the ingress and the reconciler are down; Chatwoot's deliveries fail.
    sweep.stop().await;
    let dead_ingress = p.replace_ingress().await;
    let outage_started = Instant::now();
    let mut lost = Vec::new();
    for id in 301..=350 {
        p.chatwoot
            .add_conversation(FakeConversation::new(id, DEMO_WEB_INBOX, CONTACT));
        let message = p
            .chatwoot
            .add_incoming_message(id, &format!("What does AN-{} mean in inches?", id % 12 + 3))
            .expect("the conversation exists");
        let payload = p
            .chatwoot
            .message_created_webhook(id, message.id)
            .expect("a customer message");
        assert!(
            dead_ingress.post(&payload).await.is_err(),
            "the delivery fails while the ingress is down"
        );
        lost.push((id, message.id));
    }
    // Conversation 210: the customer writes again, then an agent resolves it in Chatwoot.
    let late = p
        .chatwoot
        .add_incoming_message(210, "Never mind, found it.")
        .expect("conversation 210");
    assert!(p.chatwoot.set_status(210, ConversationStatus::Resolved));

    // Back: the fleet's reconciler starts again.
    let back_ms = now_ms();
    let back = Instant::now();
    let sweep = Sweep::start(&p).await;
    for (id, message) in &lost {
        p.wait_for_note(&p.approval_id(*id, *message), WAIT)
            .await
            .unwrap_or_else(|| panic!("lost message {message} of {id} is drafted"));
    }
    let recovered_in = back.elapsed();
    let lifecycle = LifecycleStore::new(p.queue.connection(), p.queue.keys().clone());
    wait_until_async(
        "conversation 210 shows resolved in lifecycle",
        WAIT,
        || async {
            matches!(
                lifecycle.load(account, 210).await,
                Ok((_, Some(state))) if state.status == Status::Resolved
            )
        },
    )
    .await;
    sweep.stop().await;
    let outage = back.duration_since(outage_started);

    for (id, _) in &lost {
        assert_eq!(p.chatwoot.private_notes(*id).len(), 1, "one note in {id}");
    }
    for (id, _) in &delivered {
        assert_eq!(
            p.chatwoot.private_notes(*id).len(),
            1,
            "conversation {id}'s delivered message is not drafted again"
        );
    }
    assert!(
        !has_draft(&p, 210, late.id).await,
        "a message of a conversation resolved meanwhile is not drafted"
    );
    // Every lost event was fed by the first two passes after the restart.
    let mut passes: Vec<_> = store
        .passes(50)
        .await
        .expect("pass reports")
        .into_iter()
        .filter(|pass| pass.started_at_ms >= back_ms)
        .collect();
    passes.reverse();
    let messages = |pass: &copydesk::reconcile::PassReport| {
        pass.recovered()
            .get("customer_message")
            .copied()
            .unwrap_or(0)
    };
    let first_two: u64 = passes.iter().take(2).map(messages).sum();
    let all: u64 = passes.iter().map(messages).sum();
    assert_eq!(
        all, 51,
        "50 lost messages and 210's late one, each fed once"
    );
    assert_eq!(first_two, 51, "within two sweep intervals");
    let status: u64 = passes
        .iter()
        .map(|pass| pass.recovered().get("status").copied().unwrap_or(0))
        .sum();
    assert_eq!(
        status, 1,
        "210's resolution is the one status change recovered"
    );
    let seen: u64 = passes
        .iter()
        .flat_map(|p| &p.accounts)
        .map(|a| a.already_seen)
        .sum();
    assert!(seen >= 4, "the delivered messages count as seen: {seen}");
    let calls: u64 = passes[0].accounts.iter().map(|a| a.api_calls).sum();
    println!(
        "reconcile: outage {outage:?}; 50 lost webhooks; recovered 50/50 (+1 tracked, +1 status) in {recovered_in:?} after restart (interval {INTERVAL_MS} ms); first pass {calls} API calls for {} conversations",
        passes[0].accounts[0].conversations_scanned
    );

    // A webhook that arrives after the sweep (Chatwoot's retry of a failed delivery, or a
    // late one) is a duplicate.
    let (id, message) = lost[0];
    let payload = p
        .chatwoot
        .message_created_webhook(id, message)
        .expect("stored");
    let response = p.ingress.post_webhook(&payload).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "duplicate");
    p.stop().await.expect("clean stop");
}

/// Runs the `copydesk` CLI against the pipeline's Redis and fake Chatwoot.
fn cli(p: &Pipeline, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_copydesk-fleet"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn");
    for var in [
        "REDIS_URL",
        "COPYDESK_KEY_PREFIX",
        "CHATWOOT_BASE_URL",
        "CHATWOOT_API_TOKEN",
        "CHATWOOT_ACCOUNT_ID",
        "COPYDESK_RECONCILE_WINDOW_SECS",
        "COPYDESK_RECONCILE_BACKOFF_MS",
    ] {
        command.env(var, &p.env[var]);
    }
    command.output().expect("the CLI runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "the CLI succeeds: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether a finding line of `kind` mentions `text`.
fn has_line(output: &str, kind: &str, text: &str) -> bool {
    output
        .lines()
        .any(|l| l.split_whitespace().next() == Some(kind) && l.contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_older_than_the_window_is_reported_not_drafted() {
    let p = pipeline("21600").await;
    let store = ReconcileStore::for_queue(&p.queue);
    let seven_hours_ago = now_ms() / 1000 - 7 * 3600;
    let mut old_conversation = FakeConversation::new(401, DEMO_WEB_INBOX, CONTACT);
    old_conversation.created_at = seven_hours_ago;
    p.chatwoot.add_conversation(old_conversation);
    let old = p
        .chatwoot
        .add_incoming_message_at(401, "Is the AN-8 kit back in stock?", seven_hours_ago)
        .expect("conversation 401");
    p.chatwoot
        .add_conversation(FakeConversation::new(402, DEMO_WEB_INBOX, CONTACT));
    let recent = p
        .chatwoot
        .add_incoming_message(402, "Do you ship to Canada?")
        .expect("conversation 402");

    // A dry run finds both and changes nothing.
    let dry = stdout(&cli(&p, &["reconcile", "--since", "8h", "--dry-run"]));
    let missed_line = format!("1:401 message {}:", old.id);
    let drafted_line = format!("1:402 message {} (drafted):", recent.id);
    assert!(has_line(&dry, "missed", &missed_line), "{dry}");
    assert!(has_line(&dry, "customer_message", &drafted_line), "{dry}");
    assert!(dry.contains("would feed"), "{dry}");
    assert!(store.missed(10).await.expect("missed").is_empty());
    assert!(store.passes(10).await.expect("passes").is_empty());

    // One pass at a time across replicas: while another holds the lock, a pass does nothing.
    assert!(store
        .try_lock("another-replica", Duration::from_secs(60))
        .await
        .expect("lock"));
    let listed_before = p.chatwoot.requests_to(Endpoint::ListConversations).len();
    let refused = cli(&p, &["reconcile", "--since", "8h"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("another reconciliation pass is running"),
        "{refused:?}"
    );
    assert_eq!(
        p.chatwoot.requests_to(Endpoint::ListConversations).len(),
        listed_before,
        "a refused pass reads nothing"
    );
    store.release_lock("another-replica").await.expect("unlock");

    // Chatwoot rate-limits the first call: the pass backs off and goes on.
    p.chatwoot
        .fail_next_on(Endpoint::ListConversations, 1, Fault::Status(429));
    let run = stdout(&cli(&p, &["reconcile", "--since", "8h"]));
    assert!(has_line(&run, "customer_message", &drafted_line), "{run}");
    assert!(has_line(&run, "missed", &missed_line), "{run}");
    p.wait_for_note(&p.approval_id(402, recent.id), WAIT)
        .await
        .expect("the recent lost message is drafted");
    let missed = store.missed(10).await.expect("missed");
    assert_eq!(missed.len(), 1);
    assert_eq!(
        (missed[0].conversation_id, missed[0].message_id),
        (401, old.id)
    );
    assert!(
        !has_draft(&p, 401, old.id).await,
        "the old message is not drafted"
    );
    assert!(p.chatwoot.private_notes(401).is_empty());
    let rate_limited = p
        .chatwoot
        .requests_to(Endpoint::ListConversations)
        .iter()
        .filter(|r| r.status == Some(429))
        .count();
    assert_eq!(rate_limited, 1);

    // The ops API (and the console's queues page) list it too.
    let queues: serde_json::Value = p
        .ingress
        .http
        .get(p.ingress.ops_url("/api/queues"))
        .bearer_auth(copydesk_testkit::ingress_app::TEST_OPS_TOKEN)
        .send()
        .await
        .expect("the ops API answers")
        .json()
        .await
        .expect("JSON");
    let listed = &queues["reconcile"]["missed"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{queues}");
    assert_eq!(listed[0]["message_id"], old.id);
    assert_eq!(listed[0]["answered"], false);
    assert!(queues["reconcile"]["last_pass"]["accounts"][0]["complete"] == true);
    let report = stdout(&cli(&p, &["reconcile", "--report"]));
    assert!(
        report.contains(&format!("1:401 message {}", old.id)),
        "{report}"
    );
    assert!(report.contains("AN-8 kit"), "{report}");

    // A second pass finds no message again: the first fed it, dedupe keys remember it.
    // (The assignment the assigner made is fed: the fake Chatwoot sends no webhook for it.)
    let again = stdout(&cli(&p, &["reconcile", "--since", "8h"]));
    assert!(!has_line(&again, "customer_message", ""), "{again}");
    assert!(
        !has_line(&again, "missed", &missed_line),
        "listed once: {again}"
    );
    assert_eq!(p.chatwoot.private_notes(402).len(), 1);
    p.stop().await.expect("clean stop");
}
