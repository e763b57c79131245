//! The lifecycle stage end to end against a private redis-server: a scripted conversation's
//! first response and resolution times equal the hand-computed ones, a late reply counts one
//! SLA breach, the sweep auto-closes a long-resolved conversation once (never a snoozed or
//! reopened one), concurrent updates to one conversation lose nothing, and resolving or
//! reopening keeps the assigner's workload true.

use std::sync::Arc;
use std::time::{Duration, Instant};

use copydesk::approvals::{now_ms, Priority};
use copydesk::domain::{AccountId, ConversationId, MessageId};
use copydesk::jobs::{ConversationChange, JobMeta, TrackConversation};
use copydesk::queue::{run_until_empty, DrainOutcome, QueueClient, QueueSettings};
use copydesk_testkit::testbed::TestBed;
use copydesk_workers::jobs::track_conversation;
use copydesk_workers::jobs::Deps;
use copydesk_workers::lifecycle::{
    ConversationState, LifecycleEffect, LifecyclePolicy, SlaKind, Status,
};
use copydesk_workers::routing::RoutingStore as Workload;
use copydesk_workers::routing::{PriorityMinutes, SlaTargets};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Generous: the background sweep runs every 50 ms here, CI machines are slow.
const DEADLINE: Duration = Duration::from_secs(30);

/// A fixed clock origin for scripted conversations (Unix ms).
const T0: i64 = 1_750_000_000_000;

const MINUTE: i64 = 60_000;

const ACCOUNT: i64 = 1;

struct Harness {
    bed: TestBed,
    stage: track_conversation::Handler,
}

impl Harness {
    async fn start(label: &str, policy: LifecyclePolicy) -> Self {
        let bed = TestBed::start(label);
        let stage = track_conversation::Handler::new(deps(&bed).await, Arc::new(policy));
        Self { bed, stage }
    }

    /// Another lifecycle process on the same Redis (own connection).
    async fn replica(&self, policy: LifecyclePolicy) -> track_conversation::Handler {
        track_conversation::Handler::new(deps(&self.bed).await, Arc::new(policy))
    }

    /// Applies the events in order and returns every effect.
    async fn script(&self, events: &[TrackConversation]) -> Vec<LifecycleEffect> {
        let mut effects = Vec::new();
        for event in events {
            let update = self.stage.apply(event).await.expect("event applied");
            effects.extend(update.effects);
        }
        effects
    }

    async fn state(&self, conversation_id: i64) -> ConversationState {
        self.stage
            .store()
            .load(ACCOUNT, conversation_id)
            .await
            .expect("state loads")
            .1
            .expect("state stored")
    }

    async fn tracked(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .stage
            .store()
            .tracked()
            .await
            .expect("index")
            .into_iter()
            .map(|t| t.conversation_id)
            .collect();
        ids.sort_unstable();
        ids
    }

    async fn queue(&self) -> QueueClient {
        self.bed.queue().await
    }
}

async fn deps(bed: &TestBed) -> Deps {
    Deps::new(bed.queue().await, None)
}

/// SLA targets: first response urgent 5, high 15, normal 30, low 60 minutes; resolution
/// 4, 8, 24, 48 hours. Auto-close after `auto_close`.
fn policy(auto_close: Duration) -> LifecyclePolicy {
    LifecyclePolicy {
        sla: SlaTargets::new(
            PriorityMinutes::first_response_defaults(),
            PriorityMinutes::resolution_defaults(),
        ),
        auto_close_after: auto_close,
    }
}

/// Builds a conversation's events with distinct delivery ids.
struct Events {
    conversation_id: i64,
    n: u32,
}

impl Events {
    fn of(conversation_id: i64) -> Self {
        Self {
            conversation_id,
            n: 0,
        }
    }

    fn event(&mut self, at_ms: i64, change: ConversationChange) -> TrackConversation {
        self.n += 1;
        TrackConversation {
            meta: JobMeta::new(
                format!("d-{}-{}", self.conversation_id, self.n)
                    .parse()
                    .expect("a valid delivery id"),
                at_ms,
            ),
            account_id: AccountId::new(ACCOUNT),
            conversation_id: ConversationId::new(self.conversation_id),
            occurred_at_ms: at_ms,
            change,
        }
    }

    fn created(&mut self, at_ms: i64) -> TrackConversation {
        self.event(
            at_ms,
            ConversationChange::Created {
                status: "open".into(),
            },
        )
    }

    fn customer(&mut self, at_ms: i64, message_id: i64) -> TrackConversation {
        self.event(
            at_ms,
            ConversationChange::CustomerMessage {
                message_id: MessageId::new(message_id),
            },
        )
    }

    fn reply(&mut self, at_ms: i64, message_id: i64) -> TrackConversation {
        self.event(
            at_ms,
            ConversationChange::AgentReply {
                message_id: MessageId::new(message_id),
                sender_id: Some(5),
            },
        )
    }

    fn status(&mut self, at_ms: i64, status: &str) -> TrackConversation {
        self.event(
            at_ms,
            ConversationChange::StatusChanged {
                status: status.into(),
            },
        )
    }

    fn assigned(&mut self, at_ms: i64, agent: Option<i64>) -> TrackConversation {
        self.event(
            at_ms,
            ConversationChange::Updated {
                status: "open".into(),
                assignee_id: agent,
                priority: None,
            },
        )
    }
}

fn first_responses(effects: &[LifecycleEffect]) -> Vec<f64> {
    effects
        .iter()
        .filter_map(|e| match e {
            LifecycleEffect::FirstResponse { seconds, .. } => Some(*seconds),
            _ => None,
        })
        .collect()
}

fn resolutions(effects: &[LifecycleEffect]) -> Vec<f64> {
    effects
        .iter()
        .filter_map(|e| match e {
            LifecycleEffect::Resolved { seconds, .. } => Some(*seconds),
            _ => None,
        })
        .collect()
}

fn breaches(effects: &[LifecycleEffect]) -> Vec<(Priority, SlaKind)> {
    effects
        .iter()
        .filter_map(|e| match e {
            LifecycleEffect::SlaBreach { priority, kind } => Some((*priority, *kind)),
            _ => None,
        })
        .collect()
}

fn closes(effects: &[LifecycleEffect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, LifecycleEffect::Closed))
        .count()
}

#[tokio::test]
async fn a_scripted_conversation_gives_the_hand_computed_first_response_and_resolution_times() {
    let h = Harness::start("life-script", policy(Duration::from_secs(7 * 24 * 3600))).await;
    let mut e = Events::of(301);
    // Episode 1: customer at T0+1 min, reply 2 min later, resolved 60 min after the message.
    // Episode 2: customer reopens at T0+120 min, reply 5 min later, resolved 30 min after.
    let script = [
        e.created(T0),
        e.customer(T0 + MINUTE, 1001),
        e.reply(T0 + 3 * MINUTE, 1002),
        e.status(T0 + 61 * MINUTE, "resolved"),
        e.customer(T0 + 120 * MINUTE, 1003),
        e.reply(T0 + 125 * MINUTE, 1004),
        e.status(T0 + 150 * MINUTE, "resolved"),
    ];

    let effects = h.script(&script).await;

    assert_eq!(first_responses(&effects), [120.0, 300.0]);
    assert_eq!(resolutions(&effects), [3600.0, 1800.0]);
    assert!(breaches(&effects).is_empty(), "{effects:?}");
    assert_eq!(
        effects
            .iter()
            .filter(|e| matches!(e, LifecycleEffect::Reopened { reopen_count: 1 }))
            .count(),
        1
    );
    let state = h.state(301).await;
    assert_eq!(state.status, Status::Resolved);
    assert_eq!(state.reopen_count, 1);
    assert_eq!(state.episode.number, 2);
    assert_eq!(
        state.episode.first_customer_message_at_ms,
        Some(T0 + 120 * MINUTE)
    );
    assert_eq!(state.episode.first_reply_at_ms, Some(T0 + 125 * MINUTE));
    assert_eq!(state.episode.resolved_at_ms, Some(T0 + 150 * MINUTE));

    // A replay of the whole script (Chatwoot re-sends, workers retry) changes nothing.
    let replayed = h.script(&script).await;
    assert!(replayed.is_empty(), "{replayed:?}");
    assert_eq!(h.state(301).await, state);

    // The console's stats stream got each first response and resolution once, replay or not.
    let queue = h.queue().await;
    let mut conn = queue.connection();
    let (samples, capped) = copydesk::stats::read_lifecycle(&mut conn, queue.keys(), 0, 100)
        .await
        .expect("samples read");
    assert!(!capped);
    let mut seen: Vec<(copydesk::stats::SampleKind, f64)> =
        samples.iter().map(|s| (s.kind, s.seconds)).collect();
    seen.sort_by(|a, b| a.1.total_cmp(&b.1));
    use copydesk::stats::SampleKind::{FirstResponse, Resolution};
    assert_eq!(
        seen,
        [
            (FirstResponse, 120.0),
            (FirstResponse, 300.0),
            (Resolution, 1800.0),
            (Resolution, 3600.0)
        ]
    );
}

#[tokio::test]
async fn a_late_first_reply_counts_one_sla_breach() {
    let h = Harness::start("life-sla", policy(Duration::from_secs(7 * 24 * 3600))).await;
    let mut e = Events::of(302);
    let events = [
        e.created(T0),
        e.customer(T0, 2001),
        // Normal priority: first response target 30 minutes; this reply comes after 45.
        e.reply(T0 + 45 * MINUTE, 2002),
        e.reply(T0 + 50 * MINUTE, 2003),
    ];
    let queue = h.queue().await;
    for event in &events {
        queue.enqueue(event).await.expect("enqueued");
    }
    let stage = h.stage.clone();
    let settings = QueueSettings {
        // One at a time, in order, as a single lifecycle worker would see them.
        max_in_flight: 1,
        block: Duration::from_millis(100),
        ..QueueSettings::default()
    };

    let outcome = run_until_empty::<TrackConversation, _, _>(
        queue,
        settings,
        move |job, attempt| {
            let stage = stage.clone();
            async move { stage.handle(job, attempt).await }
        },
        DEADLINE,
    )
    .await
    .expect("worker runs");

    assert_eq!(outcome, DrainOutcome::Drained);
    let state = h.state(302).await;
    assert_eq!(state.episode.first_reply_at_ms, Some(T0 + 45 * MINUTE));
    assert!(state.episode.first_response_breached);
    assert!(!state.episode.resolution_breached);
    // The breach is counted once: replaying the late reply adds nothing.
    let replay = h.stage.apply(&events[2]).await.expect("applied");
    assert!(replay.effects.is_empty());

    // An unanswered conversation is counted by the sweep, before anyone replies.
    let mut e = Events::of(303);
    h.script(&[e.created(T0), e.customer(T0, 3001)]).await;
    let early = h.stage.sweep(T0 + 29 * MINUTE).await.expect("sweep");
    let late = h.stage.sweep(T0 + 31 * MINUTE).await.expect("sweep");
    let again = h.stage.sweep(T0 + 32 * MINUTE).await.expect("sweep");
    assert_eq!((early.breaches, late.breaches, again.breaches), (0, 1, 0));
    let reply = h
        .stage
        .apply(&e.reply(T0 + 40 * MINUTE, 3002))
        .await
        .expect("applied");
    assert_eq!(first_responses(&reply.effects), [2400.0]);
    assert!(
        breaches(&reply.effects).is_empty(),
        "already counted by the sweep: {:?}",
        reply.effects
    );
    assert_eq!(
        breaches(
            &h.stage
                .apply(&e.status(T0 + 41 * MINUTE, "resolved"))
                .await
                .expect("applied")
                .effects
        ),
        []
    );
}

#[tokio::test]
async fn auto_close_fires_once_after_the_configured_time_and_never_for_snoozed_or_reopened_ones() {
    let h = Harness::start("life-autoclose", policy(Duration::from_secs(10))).await;
    let resolved_at = T0 + 10 * MINUTE;
    let mut a = Events::of(311);
    let mut b = Events::of(312);
    let mut c = Events::of(313);
    h.script(&[
        a.created(T0),
        a.customer(T0, 4001),
        a.reply(T0 + MINUTE, 4002),
        a.status(resolved_at, "resolved"),
        b.created(T0),
        b.customer(T0, 4101),
        b.status(resolved_at, "resolved"),
        b.status(resolved_at + 1_000, "snoozed"),
        c.created(T0),
        c.customer(T0, 4201),
        c.status(resolved_at, "resolved"),
        c.customer(resolved_at + 2_000, 4202),
    ])
    .await;

    let before = h.stage.sweep(resolved_at + 5_000).await.expect("sweep");
    let due = h.stage.sweep(resolved_at + 10_000).await.expect("sweep");
    let after = h.stage.sweep(resolved_at + 60_000).await.expect("sweep");

    assert_eq!((before.closed, due.closed, after.closed), (0, 1, 0));
    let closed = h.state(311).await;
    assert_eq!(closed.closed_at_ms, Some(resolved_at + 10_000));
    assert!(h.state(312).await.closed_at_ms.is_none(), "snoozed");
    assert!(h.state(313).await.closed_at_ms.is_none(), "reopened");
    assert_eq!(
        h.tracked().await,
        [312, 313],
        "a closed conversation leaves the index"
    );
    // A late replay of its resolution does not bring it back or close it again.
    let replay = h
        .stage
        .apply(&a.status(resolved_at, "resolved"))
        .await
        .expect("applied");
    assert_eq!(closes(&replay.effects), 0);
    assert_eq!(h.tracked().await, [312, 313]);
}

#[tokio::test]
async fn the_background_sweep_closes_a_long_resolved_conversation() {
    let h = Harness::start("life-background", policy(Duration::from_secs(1))).await;
    let now = now_ms();
    let mut e = Events::of(321);
    h.script(&[
        e.created(now - 10 * MINUTE),
        e.customer(now - 10 * MINUTE, 5001),
        e.reply(now - 9 * MINUTE, 5002),
        e.status(now - 5 * MINUTE, "resolved"),
    ])
    .await;
    let shutdown = CancellationToken::new();
    let sweeper = tokio::spawn(
        h.stage
            .clone()
            .with_sweep_interval(Duration::from_millis(50))
            .run_background(shutdown.clone()),
    );

    let until = Instant::now() + DEADLINE;
    while h.state(321).await.closed_at_ms.is_none() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    sweeper.await.expect("sweeper stops");

    let state = h.state(321).await;
    assert!(state.is_closed(), "{state:?}");
    assert!(h.tracked().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_to_one_conversation_lose_nothing() {
    let h = Harness::start("life-concurrent", policy(Duration::from_secs(3600))).await;
    let replicas = [
        h.replica(policy(Duration::from_secs(3600))).await,
        h.replica(policy(Duration::from_secs(3600))).await,
    ];
    let mut e = Events::of(331);
    const MESSAGES: i64 = 24;
    let events: Vec<TrackConversation> = (0..MESSAGES)
        .map(|i| e.customer(T0 + (MESSAGES - i) * 1_000, 6000 + i))
        .collect();

    let tasks: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| {
            let stage = replicas[i % 2].clone();
            tokio::spawn(async move { stage.apply(&event).await })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("task finishes")
            .expect("update stored despite contention");
    }

    let mut conn = h.bed.redis_async().await;
    let (version, json): (u64, String) = redis::cmd("HMGET")
        .arg(h.stage.store().state_key(ACCOUNT, 331))
        .arg("version")
        .arg("state")
        .query_async(&mut conn)
        .await
        .expect("state stored");
    assert_eq!(version, MESSAGES as u64, "one committed write per event");
    let stored: Value = serde_json::from_str(&json).expect("JSON");
    let seen: Vec<&str> = stored["recent_events"]
        .as_array()
        .expect("recent events")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for i in 0..MESSAGES {
        assert!(
            seen.contains(&format!("message:{}", 6000 + i).as_str()),
            "message {} lost: {seen:?}",
            6000 + i
        );
    }
    let state = h.state(331).await;
    assert_eq!(
        state.episode.first_customer_message_at_ms,
        Some(T0 + 1_000),
        "the earliest message starts the episode whatever the order"
    );
}

#[tokio::test]
async fn resolving_releases_the_agents_workload_and_a_reopen_counts_it_again() {
    let h = Harness::start("life-workload", policy(Duration::from_secs(3600))).await;
    let queue = h.queue().await;
    let workload = Workload::new(queue.connection(), queue.keys().clone());
    let open = |agent| {
        let workload = workload.clone();
        async move {
            workload
                .open_counts(ACCOUNT, &[agent])
                .await
                .expect("counts")[&agent]
        }
    };
    let mut e = Events::of(341);
    h.script(&[e.created(T0), e.customer(T0, 7001)]).await;

    h.script(&[e.assigned(T0 + 1_000, Some(5))]).await;
    assert_eq!(open(5).await, 1, "Chatwoot reported the assignee");
    h.script(&[e.assigned(T0 + 2_000, Some(6))]).await;
    assert_eq!((open(5).await, open(6).await), (0, 1), "reassigned by hand");
    h.script(&[e.status(T0 + 3_000, "resolved")]).await;
    assert_eq!(open(6).await, 0, "resolved: released");
    h.script(&[e.customer(T0 + 4_000, 7002)]).await;
    assert_eq!(open(6).await, 1, "reopened: counted again");
}
