//! What every chaos scenario shares: one fresh conversation per customer message (so a newer
//! message never supersedes another's draft), paced signed-webhook load, worker roles as real
//! `copydesk-fleet run --role X` processes that can be SIGKILLed, the exactly-once tally per
//! message, and the summary line each scenario prints.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

use copydesk::chatwoot::types::IDEMPOTENCY_ATTRIBUTE;
use copydesk::queue::{DeadLetter, DeadLetterFilter, DeadLetters};
use copydesk_testkit::fake_chatwoot::seed::DEMO_WEB_INBOX;
use copydesk_testkit::fake_chatwoot::FakeConversation;
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_testkit::process::{self, TestProcess};
use copydesk_testkit::webhook::WebhookSender;
use copydesk_workers::jobs::post_note::note_key;
use copydesk_workers::runtime::Role;
use serde_json::Value;
use tokio::task::JoinSet;

/// Generous deadline for work to finish after the chaos stops (no timing assertions: this
/// only keeps a hung run from hanging CI).
pub(crate) const DRAIN_DEADLINE: Duration = Duration::from_secs(180);

/// What customers write, round robin: sizing, shipping, a leak (urgent, safety steps) and
/// a build question, so drafts take every path of the embedded drafter.
const TEXTS: [&str; 5] = [
    "What does AN-6 mean in inches?",
    "Which hose fits an AN-8 fitting?",
    "Do you ship to Canada?",
    "My AN fittings are leaking at the carburetor.",
    "Can I reuse the olive on a compression fitting?",
];

/// Conversation ids of the chaos messages start here (the demo seed uses 101–103).
const FIRST_CONVERSATION: i64 = 10_000;

/// The worker environment every chaos scenario shares: a 2 s visibility timeout (a killed
/// worker's jobs come back quickly), orphans looked for every 200 ms.
pub(crate) fn chaos_env(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = process::env(&[
        ("COPYDESK_VISIBILITY_TIMEOUT_MS", "2000"),
        ("COPYDESK_RECLAIM_INTERVAL_MS", "200"),
        ("RUST_LOG", "error"),
    ]);
    env.extend(process::env(extra));
    env
}

/// Starts a pipeline with `roles` in-process and `env` for the workers.
pub(crate) async fn start_pipeline(
    roles: Vec<Role>,
    env: HashMap<String, String>,
    durable_redis: bool,
) -> Pipeline {
    PipelineOptions {
        env,
        durable_redis,
        ..PipelineOptions::default()
    }
    .roles(roles)
    .start()
    .await
}

/// One customer message of a scenario: its own conversation, its stored message, the signed
/// webhook payload Chatwoot would send for it.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) conversation_id: i64,
    pub(crate) approval_id: String,
    pub(crate) payload: Value,
}

/// Stores `count` customer messages in the fake, one fresh conversation each (contacts 11
/// and 12 of the demo seed), and builds their webhooks. Nothing is sent yet.
pub(crate) fn customer_messages(p: &Pipeline, count: usize) -> Vec<Message> {
    (0..count)
        .map(|n| {
            let conversation_id = FIRST_CONVERSATION + n as i64;
            let contact = 11 + (n % 2) as i64;
            p.chatwoot.add_conversation(FakeConversation::new(
                conversation_id,
                DEMO_WEB_INBOX,
                contact,
            ));
            let message = p
                .chatwoot
                .add_incoming_message(conversation_id, TEXTS[n % TEXTS.len()])
                .expect("the conversation was just added");
            let payload = p
                .chatwoot
                .message_created_webhook(conversation_id, message.id)
                .expect("a stored customer message has a webhook");
            Message {
                conversation_id,
                approval_id: p.approval_id(conversation_id, message.id),
                payload,
            }
        })
        .collect()
}

/// How the ingress answered one webhook.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// Index into the scenario's messages.
    pub(crate) index: usize,
    /// HTTP status, or `None` when the request itself failed.
    pub(crate) status: Option<u16>,
    /// The `status` field of the JSON body (`queued`, `spooled`, …), if any.
    pub(crate) outcome: Option<String>,
}

impl Answer {
    /// 2xx: Chatwoot considers the webhook delivered.
    pub(crate) fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Posts every message's webhook, one every `interval`, each on its own task (so a slow
/// answer does not slow the pace); returns the answers in message order.
pub(crate) async fn send_paced(
    sender: WebhookSender,
    messages: &[Message],
    interval: Duration,
) -> Vec<Answer> {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut posts = JoinSet::new();
    for (index, message) in messages.iter().enumerate() {
        tick.tick().await;
        let sender = sender.clone();
        let payload = message.payload.clone();
        posts.spawn(async move {
            let (status, outcome) = match sender.post(&payload).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body: Option<Value> = response.json().await.ok();
                    let outcome = body
                        .as_ref()
                        .and_then(|b| b["status"].as_str())
                        .map(str::to_owned);
                    (Some(status), outcome)
                }
                Err(_) => (None, None),
            };
            Answer {
                index,
                status,
                outcome,
            }
        });
    }
    let mut answers: Vec<Answer> = posts.join_all().await.into_iter().collect::<Vec<Answer>>();
    answers.sort_by_key(|a| a.index);
    answers
}

/// Counts answers by status (`None` → "error").
pub(crate) fn statuses(answers: &[Answer]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for answer in answers {
        let key = answer
            .status
            .map_or_else(|| "error".to_owned(), |s| s.to_string());
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Waits until every message in `messages` has its private note id stored, or the deadline
/// passes; returns the ones still without one.
pub(crate) async fn wait_for_notes<'m>(
    p: &Pipeline,
    messages: impl IntoIterator<Item = &'m Message>,
    deadline: Duration,
) -> Vec<&'m Message> {
    let until = Instant::now() + deadline;
    let mut waiting: Vec<&Message> = messages.into_iter().collect();
    loop {
        let mut still = Vec::new();
        for message in waiting {
            match p.approvals.get(&message.approval_id).await {
                Ok(Some(item)) if item.note_id.is_some() => {}
                _ => still.push(message),
            }
        }
        waiting = still;
        if waiting.is_empty() || Instant::now() >= until {
            return waiting;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the draft queues have nothing queued, running or scheduled.
pub(crate) async fn wait_until_idle(p: &Pipeline, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    loop {
        let mut idle = true;
        for queue in ["lookup_knowledge", "generate_draft", "post_note"] {
            idle &= p.queue.depth(queue).await.is_ok_and(|d| d.is_idle());
        }
        if idle {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The exactly-once verdict over a set of messages, read from the fake Chatwoot (what the
/// customer and agents would see) and the approval store.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    /// Messages with an approval item and exactly one draft note, the one the item names.
    pub(crate) processed: usize,
    /// Messages without an approval item or without a draft note.
    pub(crate) lost: Vec<String>,
    /// Messages with more than one draft note.
    pub(crate) duplicated: Vec<String>,
    /// Messages whose item names a note other than the one posted.
    pub(crate) mismatched: Vec<String>,
    /// Public replies in the scenario's conversations (nothing was approved: must be 0).
    pub(crate) public_replies: usize,
    /// Webhook received → note id stored, per processed message, ascending.
    pub(crate) latencies_ms: Vec<i64>,
}

impl Tally {
    /// Counts `messages`.
    pub(crate) async fn of<'m>(
        p: &Pipeline,
        messages: impl IntoIterator<Item = &'m Message>,
    ) -> Self {
        let mut tally = Self::default();
        for message in messages {
            let key = note_key(&message.approval_id);
            let marker = format!("Approval {} ", message.approval_id);
            let notes: Vec<_> = p
                .chatwoot
                .private_notes(message.conversation_id)
                .into_iter()
                .filter(|n| {
                    n.content_attributes
                        .get(IDEMPOTENCY_ATTRIBUTE)
                        .and_then(Value::as_str)
                        == Some(key.as_str())
                        || n.content.as_deref().is_some_and(|c| c.contains(&marker))
                })
                .collect();
            tally.public_replies += p.chatwoot.public_replies(message.conversation_id).len();
            let item = p
                .approvals
                .get(&message.approval_id)
                .await
                .expect("the approval store answers");
            match (item, notes.len()) {
                (Some(item), 1) if item.note_id == Some(notes[0].id) => {
                    tally.processed += 1;
                    if let Some(posted) = item.note_posted_at_ms {
                        tally.latencies_ms.push(posted - item.doc.received_at_ms);
                    }
                }
                (Some(_), 1) => tally.mismatched.push(message.approval_id.clone()),
                (_, 0) | (None, _) => tally.lost.push(message.approval_id.clone()),
                _ => tally.duplicated.push(message.approval_id.clone()),
            }
        }
        tally.latencies_ms.sort_unstable();
        tally
    }

    /// `p50 X ms, max Y ms` of webhook received → note stored.
    pub(crate) fn latency(&self) -> String {
        match self.latencies_ms.last() {
            Some(max) => format!(
                "p50 {} ms / max {} ms",
                self.latencies_ms[self.latencies_ms.len() / 2],
                max
            ),
            None => "-".to_owned(),
        }
    }

    /// Messages whose note took at least `threshold` (e.g. the visibility timeout: their job
    /// waited for a reclaim after its worker was killed).
    pub(crate) fn slower_than(&self, threshold: Duration) -> usize {
        let threshold = threshold.as_millis() as i64;
        self.latencies_ms
            .iter()
            .filter(|l| **l >= threshold)
            .count()
    }

    /// Asserts the exactly-once guarantee, naming the first offenders.
    pub(crate) fn assert_exactly_once(&self, scenario: &str) {
        let first = |v: &[String]| v.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
        assert!(
            self.lost.is_empty(),
            "{scenario}: {} message(s) lost (no approval or no note): {}",
            self.lost.len(),
            first(&self.lost)
        );
        assert!(
            self.duplicated.is_empty(),
            "{scenario}: {} message(s) with more than one note: {}",
            self.duplicated.len(),
            first(&self.duplicated)
        );
        assert!(
            self.mismatched.is_empty(),
            "{scenario}: {} item(s) naming another note than the one posted: {}",
            self.mismatched.len(),
            first(&self.mismatched)
        );
        assert_eq!(self.public_replies, 0, "{scenario}: nothing was approved");
    }
}

/// Every dead letter, all queues.
pub(crate) async fn all_dead_letters(p: &Pipeline) -> Vec<DeadLetter> {
    DeadLetters::new(&p.queue)
        .list(&DeadLetterFilter {
            limit: Some(10_000),
            ..DeadLetterFilter::default()
        })
        .await
        .expect("dead letters list")
}

/// `queue=count` of dead letters, for the summary.
pub(crate) fn dead_letter_counts(letters: &[DeadLetter]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for letter in letters {
        *counts.entry(letter.queue.as_str()).or_insert(0) += 1;
    }
    if counts.is_empty() {
        return "0".to_owned();
    }
    counts
        .iter()
        .map(|(q, n)| format!("{q}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One scenario's printed line: `scenario: sent N, processed N, lost 0, duplicated 0, …`.
#[derive(Debug)]
pub(crate) struct Summary {
    pub(crate) scenario: &'static str,
    pub(crate) sent: usize,
    pub(crate) tally: Tally,
    pub(crate) details: Vec<(String, String)>,
    pub(crate) started: Instant,
}

impl Summary {
    /// A summary of `scenario` timed from now.
    pub(crate) fn new(scenario: &'static str) -> Self {
        Self {
            scenario,
            sent: 0,
            tally: Tally::default(),
            details: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Adds `name value` after the fixed fields.
    pub(crate) fn detail(&mut self, name: &str, value: impl fmt::Display) {
        self.details.push((name.to_owned(), value.to_string()));
    }

    /// Prints the line.
    pub(crate) fn print(&self) {
        println!("{self}");
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: sent {}, processed {}, lost {}, duplicated {}",
            self.scenario,
            self.sent,
            self.tally.processed,
            self.tally.lost.len(),
            self.tally.duplicated.len()
        )?;
        if !self.tally.mismatched.is_empty() {
            write!(
                f,
                ", note posted but not the one its item names {}",
                self.tally.mismatched.len()
            )?;
        }
        for (name, value) in &self.details {
            write!(f, ", {name} {value}")?;
        }
        write!(f, ", took {:.1} s", self.started.elapsed().as_secs_f64())
    }
}

/// A worker role as a real `copydesk-fleet run --role X` process; SIGKILLed on drop.
#[derive(Debug)]
pub(crate) struct FleetProcess {
    pub(crate) role: Role,
    process: TestProcess,
}

impl FleetProcess {
    /// Starts `role` with `env` (the pipeline's worker environment).
    pub(crate) fn spawn(role: Role, env: &HashMap<String, String>) -> Self {
        let mut command =
            process::role_command(env!("CARGO_BIN_EXE_copydesk-fleet"), role.name(), env);
        let process = TestProcess::spawn(&mut command, role.name());
        Self { role, process }
    }

    /// SIGKILL (what an OOM kill or node loss looks like), then reaps the process.
    pub(crate) fn kill(&mut self) {
        self.process.kill();
    }

    /// True while the process has not exited by itself.
    pub(crate) fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}
