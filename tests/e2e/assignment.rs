//! The assigner end to end: `assign_conversation::Handler` against a private redis-server and the fake
//! Chatwoot, with a routing table of its own. One test per branch of the decision tree
//! (safety, VIP, each intent, default), the agent choice (fewest open conversations, round
//! robin among equals shared by replicas, offline agents skipped), the waiting list, kept
//! and re-routed assignees, and escalations (team + exactly one private note).

use std::sync::Arc;
use std::time::{Duration, Instant};

use copydesk::approvals::Priority;
use copydesk::chatwoot::{AvailabilityStatus, ChatwootClient, ConversationPriority};
use copydesk::domain::{AccountId, ConversationId};
use copydesk::jobs::{
    AssignConversation, AssignReason, ConversationChange, JobMeta, TrackConversation,
};
use copydesk::queue::{run_until_empty, DrainOutcome, JobAttempt, JobError, QueueSettings};
use copydesk_testkit::fake_chatwoot::seed::DEMO_WEB_INBOX;
use copydesk_testkit::fake_chatwoot::{
    Endpoint, FakeChatwoot, FakeContact, FakeConversation, FakeTeam, Fault, Seed,
};
use copydesk_testkit::testbed::TestBed;
use copydesk_workers::jobs::assign_conversation::{self, Routed};
use copydesk_workers::jobs::track_conversation;
use copydesk_workers::jobs::Deps;
use copydesk_workers::lifecycle::LifecyclePolicy;
use copydesk_workers::routing::{RoutingReason, RoutingTable};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

/// Generous: background polls run every 50 ms here, CI machines are slow.
const DEADLINE: Duration = Duration::from_secs(30);

/// Teams: General 1 (agents 2, 3), Order Support 2 (no agents listed: Chatwoot's members 4
/// and 5 count), Product Q&A 3 (6), Managers 4 (7), Senior Operators 5 (8), Safety 6 (9).
/// Busy agents are skipped, so "online" is the only availability that takes work.
const ROUTING: &str = r#"
default_team = "General"
senior_team = "Senior Operators"
safety_team = "Safety"
busy_agents = "skip"

[safety]
words = ["leak", "leaking", "fire", "brake failure"]

[[vip.rules]]
attribute = "vip"
values = ["true"]

[[teams]]
name = "General"
id = 1
agents = [2, 3]

[[teams]]
name = "Order Support"
id = 2
agents = []

[[teams]]
name = "Product Q&A"
id = 3
agents = [6]

[[teams]]
name = "Managers"
id = 4
agents = [7]

[[teams]]
name = "Senior Operators"
id = 5
agents = [8]

[[teams]]
name = "Safety"
id = 6
agents = [9]

[[intents]]
name = "complaint"
team = "Managers"
keywords = ["complaint", "unacceptable"]

[[intents]]
name = "order_status"
team = "Order Support"
keywords = ["where is my order", "tracking"]

[[intents]]
name = "product_question"
team = "Product Q&A"
keywords = ["fitting", "hose"]
"#;

/// A regular customer.
const CUSTOMER: i64 = 11;
/// A customer whose contact attributes say `vip: true`.
const VIP_CUSTOMER: i64 = 13;

/// The fake's account: the token's own user (1) offline, agents 2..=9 online, the six teams.
fn seed() -> Seed {
    let mut seed = Seed::empty();
    seed.agents[0].availability_status = AvailabilityStatus::Offline;
    for id in 2..=9 {
        seed.agents
            .push(copydesk_testkit::fake_chatwoot::FakeAgent {
                id,
                name: format!("Agent {id}"),
                email: format!("agent{id}@parts.example.com"),
                role: "agent".into(),
                availability_status: AvailabilityStatus::Online,
            });
    }
    let team = |id, name: &str, members: Vec<i64>| FakeTeam {
        id,
        name: name.into(),
        description: String::new(),
        members,
    };
    seed.teams = vec![
        team(1, "General", vec![2, 3]),
        team(2, "Order Support", vec![4, 5]),
        team(3, "Product Q&A", vec![6]),
        team(4, "Managers", vec![7]),
        team(5, "Senior Operators", vec![8]),
        team(6, "Safety", vec![9]),
    ];
    let contact = |id, name: &str, attributes: Value| FakeContact {
        id,
        name: name.into(),
        email: None,
        phone_number: None,
        custom_attributes: match attributes {
            Value::Object(map) => map,
            _ => Map::new(),
        },
    };
    seed.contacts = vec![
        contact(CUSTOMER, "Jane Doe", json!({})),
        contact(VIP_CUSTOMER, "Alex Turner", json!({"vip": true})),
    ];
    seed
}

struct Harness {
    bed: TestBed,
    fake: FakeChatwoot,
    table: Arc<RoutingTable>,
    stage: assign_conversation::Handler,
}

impl Harness {
    async fn start(label: &str) -> Self {
        let bed = TestBed::start(label);
        let fake = FakeChatwoot::start(seed()).await;
        let table = Arc::new(
            RoutingTable::from_toml_str(ROUTING, "assignment test table").expect("valid table"),
        );
        let stage = assign_conversation::Handler::new(deps(&bed, &fake).await, table.clone());
        Self {
            bed,
            fake,
            table,
            stage,
        }
    }

    /// Another assigner process on the same Redis and Chatwoot (own connections).
    async fn replica(&self) -> assign_conversation::Handler {
        assign_conversation::Handler::new(self.deps().await, self.table.clone())
    }

    async fn deps(&self) -> Deps {
        deps(&self.bed, &self.fake).await
    }

    /// A new open conversation in which the customer wrote `text`.
    fn conversation(&self, id: i64, contact: i64, text: &str) {
        self.fake
            .add_conversation(FakeConversation::new(id, DEMO_WEB_INBOX, contact));
        self.fake
            .add_incoming_message(id, text)
            .expect("the conversation exists");
    }

    fn assignee(&self, id: i64) -> Option<i64> {
        self.fake
            .conversation(id)
            .expect("conversation")
            .assignee_id
    }

    fn team(&self, id: i64) -> Option<i64> {
        self.fake.conversation(id).expect("conversation").team_id
    }

    fn priority(&self, id: i64) -> Option<ConversationPriority> {
        self.fake.conversation(id).expect("conversation").priority
    }

    fn set_online(&self, agent: i64, online: bool) {
        let status = if online {
            AvailabilityStatus::Online
        } else {
            AvailabilityStatus::Offline
        };
        assert!(self.fake.set_agent_availability(agent, status));
    }

    /// Assignment requests that named an agent, in order: (conversation, agent).
    fn agent_assignments(&self) -> Vec<(i64, Option<i64>)> {
        self.fake
            .requests_to(Endpoint::Assign)
            .iter()
            .filter_map(|r| {
                let body = r.body.as_ref()?;
                let agent = body.get("assignee_id")?;
                let conversation = r.path.split('/').nth(6)?.parse().ok()?;
                Some((conversation, agent.as_i64()))
            })
            .collect()
    }

    async fn assign(&self, job: AssignConversation) -> Routed {
        self.stage
            .assign(&job, first_attempt())
            .await
            .expect("assignment succeeds")
    }

    async fn open_count(&self, agent: i64) -> u32 {
        let counts = self
            .stage
            .workload()
            .open_counts(1, &[agent])
            .await
            .expect("counts");
        counts[&agent]
    }

    async fn redis(&self) -> redis::aio::MultiplexedConnection {
        self.bed.redis_async().await
    }
}

/// Queue access under the bed's prefix and a Chatwoot client for the fake.
async fn deps(bed: &TestBed, fake: &FakeChatwoot) -> Deps {
    let queue = bed.queue().await;
    let chatwoot = ChatwootClient::new(&fake.client_config()).expect("client builds");
    Deps::new(queue, Some(chatwoot))
}

fn meta(delivery: &str) -> JobMeta {
    JobMeta::new(delivery.parse().expect("a valid delivery id"), 0)
}

fn first_attempt() -> JobAttempt {
    JobAttempt {
        attempt: 1,
        max_attempts: 5,
        redelivered: false,
    }
}

fn new_conversation(id: i64, text: &str) -> AssignConversation {
    AssignConversation {
        meta: meta(&format!("created-{id}")),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(id),
        reason: AssignReason::NewConversation {
            first_message: Some(text.to_owned()),
        },
    }
}

fn drafted(id: i64, priority: &str, text: &str) -> AssignConversation {
    AssignConversation {
        meta: meta(&format!("drafted-{id}-{priority}")),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(id),
        reason: AssignReason::Drafted {
            approval_id: format!("1-{id}-{priority}")
                .parse()
                .expect("a valid approval id"),
            priority: priority.parse().expect("a priority"),
            text: text.to_owned(),
            vip: false,
        },
    }
}

fn escalation(id: i64, team: &str) -> AssignConversation {
    AssignConversation {
        meta: meta(&format!("escalated-{id}")),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(id),
        reason: AssignReason::Escalation {
            approval_id: format!("1-{id}-77").parse().expect("a valid approval id"),
            team: team.to_owned(),
            note: "refund is over my limit".into(),
            operator: "anna".into(),
        },
    }
}

fn resolved(id: i64, n: i64) -> TrackConversation {
    TrackConversation {
        meta: meta(&format!("resolved-{id}-{n}")),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(id),
        occurred_at_ms: 1_750_000_000_000 + n,
        change: ConversationChange::StatusChanged {
            status: "resolved".into(),
        },
    }
}

#[tokio::test]
async fn a_safety_word_makes_the_conversation_urgent_with_an_online_safety_agent() {
    let h = Harness::start("assign-safety").await;
    h.conversation(201, CUSTOMER, "Your hose is leaking fuel onto the exhaust!");

    let routed = h
        .assign(new_conversation(
            201,
            "Your hose is leaking fuel onto the exhaust!",
        ))
        .await;

    assert!(
        matches!(
            routed,
            Routed::Assigned {
                reason: RoutingReason::Safety { .. },
                agent_id: 9,
                priority: Priority::Urgent,
                ..
            }
        ),
        "{routed:?}"
    );
    assert_eq!(h.team(201), Some(6));
    assert_eq!(h.assignee(201), Some(9));
    assert_eq!(h.priority(201), Some(ConversationPriority::Urgent));
    assert_eq!(h.open_count(9).await, 1);
}

#[tokio::test]
async fn a_safety_conversation_goes_to_anyone_online_when_the_safety_team_is_away() {
    let h = Harness::start("assign-safety-fallback").await;
    for agent in [2, 3, 4, 6, 7, 8, 9] {
        h.set_online(agent, false);
    }
    h.conversation(202, CUSTOMER, "There is a fire under the hood");

    h.assign(new_conversation(202, "There is a fire under the hood"))
        .await;

    assert_eq!(h.team(202), Some(6), "still the safety team's conversation");
    assert_eq!(
        h.assignee(202),
        Some(5),
        "the only agent online, from another team"
    );
    assert_eq!(h.priority(202), Some(ConversationPriority::Urgent));
}

#[tokio::test]
async fn copydesks_own_user_is_never_picked_even_when_it_is_the_only_one_online() {
    let h = Harness::start("assign-not-the-bot").await;
    for agent in 2..=9 {
        h.set_online(agent, false);
    }
    // User 1 is the API token's own user (the fake's `token_user_id`).
    h.set_online(1, true);
    h.conversation(203, CUSTOMER, "There is a fire under the hood");

    let routed = h
        .assign(new_conversation(203, "There is a fire under the hood"))
        .await;

    assert!(matches!(routed, Routed::Waiting { .. }), "{routed:?}");
    assert_eq!(h.assignee(203), None, "not assigned to Copydesk itself");
    assert_eq!(h.team(203), Some(6));
}

#[tokio::test]
async fn a_vip_contact_goes_to_the_senior_team_at_high_priority() {
    let h = Harness::start("assign-vip").await;
    h.conversation(203, VIP_CUSTOMER, "Need a fuel system for 1500 HP");

    let routed = h
        .assign(new_conversation(203, "Need a fuel system for 1500 HP"))
        .await;

    assert!(
        matches!(
            routed,
            Routed::Assigned {
                reason: RoutingReason::Vip,
                ..
            }
        ),
        "{routed:?}"
    );
    assert_eq!(h.team(203), Some(5));
    assert_eq!(h.assignee(203), Some(8));
    assert_eq!(h.priority(203), Some(ConversationPriority::High));
}

#[tokio::test]
async fn each_intent_routes_to_its_team_and_anything_else_to_the_default_team() {
    let h = Harness::start("assign-intents").await;
    let cases = [
        (
            211,
            "This is unacceptable, I want to file a complaint",
            4,
            7,
        ),
        (212, "Where is my order? The tracking page is empty", 2, 4),
        (213, "Which fitting fits a -8 hose?", 3, 6),
        (214, "Hello, are you open on Saturday?", 1, 2),
    ];
    for (id, text, _, _) in cases {
        h.conversation(id, CUSTOMER, text);
    }

    for (id, text, _, _) in cases {
        h.assign(drafted(id, "normal", text)).await;
    }

    for (id, text, team, agent) in cases {
        assert_eq!(h.team(id), Some(team), "team for {text:?}");
        assert_eq!(h.assignee(id), Some(agent), "agent for {text:?}");
        assert_eq!(
            h.priority(id),
            Some(ConversationPriority::Medium),
            "normal is Chatwoot's medium"
        );
    }
    let members_read: Vec<String> = h
        .fake
        .requests_to(Endpoint::ListTeamMembers)
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        members_read
            .iter()
            .all(|p| p.ends_with("/teams/2/team_members"))
            && !members_read.is_empty(),
        "only the team without agents in the routing file is read from Chatwoot: {members_read:?}"
    );
}

#[tokio::test]
async fn the_agent_with_the_fewest_open_conversations_wins() {
    let h = Harness::start("assign-workload").await;
    for held in [901, 902] {
        h.stage
            .workload()
            .set_owner(1, held, Some(2))
            .await
            .expect("workload recorded");
    }
    for id in [221, 222, 223] {
        h.conversation(id, CUSTOMER, "Hello");
    }

    h.assign(new_conversation(221, "Hello")).await;
    h.assign(new_conversation(222, "Hello")).await;
    h.assign(new_conversation(223, "Hello")).await;

    assert_eq!(h.assignee(221), Some(3), "3 holds 0, 2 holds 2");
    assert_eq!(h.assignee(222), Some(3), "3 holds 1, 2 holds 2");
    assert_eq!(
        h.assignee(223),
        Some(2),
        "2 each: round robin moves on from 3"
    );
    assert_eq!(h.open_count(2).await, 3);
    assert_eq!(h.open_count(3).await, 2);
}

#[tokio::test]
async fn agents_with_equal_workload_take_turns_and_replicas_share_the_turn() {
    let h = Harness::start("assign-round-robin").await;
    let replicas = [h.replica().await, h.replica().await];
    let lifecycle =
        track_conversation::Handler::new(h.deps().await, Arc::new(LifecyclePolicy::default()));

    let mut picks = Vec::new();
    for (n, id) in [231_i64, 232, 233, 234].into_iter().enumerate() {
        h.conversation(id, CUSTOMER, "Hello");
        replicas[n % 2]
            .assign(&new_conversation(id, "Hello"), first_attempt())
            .await
            .expect("assigned");
        picks.push(h.assignee(id).expect("assigned"));
        // Resolving releases the workload, so both agents hold 0 again.
        lifecycle
            .apply(&resolved(id, n as i64))
            .await
            .expect("tracked");
    }

    assert_eq!(picks, [2, 3, 2, 3]);
    assert_eq!(h.open_count(2).await, 0);
    assert_eq!(h.open_count(3).await, 0);
    let mut conn = h.redis().await;
    let cursors: String = redis::cmd("GET")
        .arg(h.stage.round_robin_key(1))
        .query_async(&mut conn)
        .await
        .expect("cursors stored");
    let cursors: Value = serde_json::from_str(&cursors).expect("JSON");
    assert_eq!(cursors["last"]["team:1"], json!(3));
}

#[tokio::test]
async fn offline_agents_are_never_picked_even_with_less_work() {
    let h = Harness::start("assign-offline").await;
    h.set_online(2, false);
    for held in [911, 912, 913] {
        h.stage
            .workload()
            .set_owner(1, held, Some(3))
            .await
            .expect("workload recorded");
    }
    h.conversation(241, CUSTOMER, "Hello");

    h.assign(new_conversation(241, "Hello")).await;

    assert_eq!(h.assignee(241), Some(3));
}

#[tokio::test]
async fn with_nobody_online_the_conversation_waits_and_is_assigned_when_an_agent_comes_online() {
    let h = Harness::start("assign-waiting").await;
    h.set_online(2, false);
    h.set_online(3, false);
    h.conversation(251, CUSTOMER, "Hello, a general question");
    h.conversation(252, CUSTOMER, "Hello, another question");

    let first = h
        .assign(new_conversation(251, "Hello, a general question"))
        .await;
    let second = h
        .assign(drafted(252, "high", "Hello, another question"))
        .await;

    assert!(matches!(first, Routed::Waiting { .. }), "{first:?}");
    assert!(
        matches!(
            second,
            Routed::Waiting {
                priority: Priority::High,
                ..
            }
        ),
        "{second:?}"
    );
    for id in [251, 252] {
        assert_eq!(h.team(id), Some(1), "the team is assigned at once");
        assert_eq!(h.assignee(id), None, "nobody to assign");
    }
    assert_eq!(h.priority(251), Some(ConversationPriority::Medium));
    assert_eq!(h.priority(252), Some(ConversationPriority::High));
    let waiting: Vec<i64> = h
        .stage
        .waiting_list()
        .first(1, 10)
        .await
        .expect("list")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(waiting, [252, 251], "higher priority first, then older");

    // Act: the background poll runs while agent 3 comes online.
    let shutdown = CancellationToken::new();
    let poller = tokio::spawn(
        h.replica()
            .await
            .with_waiting_poll(Duration::from_millis(50))
            .run_background(shutdown.clone()),
    );
    h.set_online(3, true);
    let until = Instant::now() + DEADLINE;
    while (h.assignee(251).is_none() || h.assignee(252).is_none()) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    poller.await.expect("poller stops");

    assert_eq!(h.assignee(251), Some(3));
    assert_eq!(h.assignee(252), Some(3));
    let order: Vec<i64> = h
        .agent_assignments()
        .into_iter()
        .map(|(conversation, _)| conversation)
        .collect();
    assert_eq!(
        order,
        [252, 251],
        "the more urgent conversation was assigned first"
    );
    assert_eq!(h.stage.waiting_list().len(1).await.expect("len"), 0);
    assert_eq!(h.open_count(3).await, 2);
}

#[tokio::test]
async fn an_agent_online_job_assigns_waiting_conversations() {
    let h = Harness::start("assign-agent-online").await;
    h.set_online(2, false);
    h.set_online(3, false);
    h.conversation(256, CUSTOMER, "Hello");
    h.assign(new_conversation(256, "Hello")).await;
    assert_eq!(h.assignee(256), None);

    h.set_online(2, true);
    h.assign(AssignConversation {
        meta: meta("agent-2-online"),
        account_id: AccountId::new(1),
        conversation_id: ConversationId::new(0),
        reason: AssignReason::AgentOnline,
    })
    .await;

    assert_eq!(h.assignee(256), Some(2));
    assert_eq!(h.stage.waiting_list().len(1).await.expect("len"), 0);
}

#[tokio::test]
async fn an_online_assignee_keeps_the_conversation_and_its_priority_only_rises() {
    let h = Harness::start("assign-keep").await;
    let mut conversation = FakeConversation::new(261, DEMO_WEB_INBOX, CUSTOMER);
    conversation.assignee_id = Some(3);
    conversation.team_id = Some(1);
    conversation.priority = Some(ConversationPriority::Low);
    h.fake.add_conversation(conversation);
    h.fake.add_incoming_message(261, "This is unacceptable");

    let routed = h.assign(drafted(261, "high", "This is unacceptable")).await;
    h.assign(drafted(261, "low", "This is unacceptable")).await;

    assert_eq!(
        routed,
        Routed::Kept {
            agent_id: 3,
            priority: Priority::High
        }
    );
    assert_eq!(h.assignee(261), Some(3));
    assert_eq!(
        h.team(261),
        Some(1),
        "the complaint intent does not move it"
    );
    assert_eq!(
        h.priority(261),
        Some(ConversationPriority::High),
        "raised from low, then not lowered again"
    );
    assert!(h.fake.requests_to(Endpoint::Assign).is_empty());
    assert_eq!(
        h.open_count(3).await,
        1,
        "the kept conversation counts for its agent"
    );
}

#[tokio::test]
async fn an_offline_assignee_is_replaced_by_routing_again() {
    let h = Harness::start("assign-reroute").await;
    h.set_online(2, false);
    let mut conversation = FakeConversation::new(262, DEMO_WEB_INBOX, CUSTOMER);
    conversation.assignee_id = Some(2);
    conversation.team_id = Some(1);
    h.fake.add_conversation(conversation);
    h.fake.add_incoming_message(262, "Where is my order?");
    h.stage
        .workload()
        .set_owner(1, 262, Some(2))
        .await
        .expect("workload recorded");

    h.assign(drafted(262, "normal", "Where is my order?")).await;

    assert_eq!(h.team(262), Some(2));
    assert_eq!(h.assignee(262), Some(4));
    assert_eq!(
        h.open_count(2).await,
        0,
        "moved away from the offline agent"
    );
    assert_eq!(h.open_count(4).await, 1);
}

#[tokio::test]
async fn an_escalation_assigns_the_named_team_and_posts_one_note_even_when_run_twice() {
    let h = Harness::start("assign-escalation").await;
    let mut conversation = FakeConversation::new(271, DEMO_WEB_INBOX, CUSTOMER);
    conversation.assignee_id = Some(3);
    conversation.team_id = Some(1);
    h.fake.add_conversation(conversation);
    h.fake.add_incoming_message(271, "I was charged twice");
    let job = escalation(271, "managers");

    let routed = h.assign(job.clone()).await;
    let again = h
        .stage
        .assign(
            &job,
            JobAttempt {
                attempt: 2,
                max_attempts: 5,
                redelivered: false,
            },
        )
        .await
        .expect("second run succeeds");

    assert!(
        matches!(
            routed,
            Routed::Assigned {
                reason: RoutingReason::Escalation { .. },
                agent_id: 7,
                ..
            }
        ),
        "{routed:?}"
    );
    assert!(
        matches!(again, Routed::Assigned { agent_id: 7, .. }),
        "{again:?}"
    );
    assert_eq!(h.team(271), Some(4));
    assert_eq!(
        h.assignee(271),
        Some(7),
        "escalations re-route even from an online agent"
    );
    let notes = h.fake.private_notes(271);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(
        notes[0].content.as_deref(),
        Some("Escalated by anna to Managers: refund is over my limit")
    );
    assert_eq!(h.fake.requests_to(Endpoint::CreateMessage).len(), 1);
}

#[tokio::test]
async fn an_escalation_note_whose_answer_was_lost_is_not_posted_twice() {
    let h = Harness::start("assign-escalation-lost").await;
    h.conversation(272, CUSTOMER, "I was charged twice");
    h.fake
        .fail_next_on(Endpoint::CreateMessage, 1, Fault::DropAfterApply);
    let queue = h.deps().await.queue;
    queue
        .enqueue(&escalation(272, "Managers"))
        .await
        .expect("enqueued");
    let stage = h.replica().await;

    let outcome = run_until_empty::<AssignConversation, _, _>(
        queue.clone(),
        fast_settings(),
        move |job, attempt| {
            let stage = stage.clone();
            async move { stage.handle(job, attempt).await }
        },
        DEADLINE,
    )
    .await
    .expect("worker runs");

    assert_eq!(outcome, DrainOutcome::Drained);
    assert_eq!(h.fake.requests_to(Endpoint::CreateMessage).len(), 1);
    assert_eq!(h.fake.private_notes(272).len(), 1);
    assert!(
        !h.fake.requests_to(Endpoint::ListMessages).is_empty(),
        "the retry looked for the note before posting"
    );
    assert_eq!(h.assignee(272), Some(7));
    assert_eq!(h.team(272), Some(4));
}

#[tokio::test]
async fn an_escalation_to_an_unknown_team_is_a_permanent_error_naming_the_known_teams() {
    let h = Harness::start("assign-escalation-unknown").await;
    h.conversation(273, CUSTOMER, "Help");

    let error = h
        .stage
        .assign(&escalation(273, "Legal"), first_attempt())
        .await
        .expect_err("unknown team");

    let JobError::Permanent(error) = error else {
        panic!("expected a permanent error, got {error:?}");
    };
    let message = format!("{error:#}");
    assert!(message.contains("\"Legal\""), "{message}");
    assert!(
        message.contains("General, Order Support, Product Q&A, Managers, Senior Operators, Safety"),
        "{message}"
    );
    assert!(h.fake.requests_to(Endpoint::Assign).is_empty());
    assert!(h.fake.private_notes(273).is_empty());
}

fn fast_settings() -> QueueSettings {
    QueueSettings {
        visibility_timeout: Duration::from_secs(5),
        block: Duration::from_millis(100),
        reclaim_interval: Duration::from_millis(100),
        max_attempts: 5,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        maintenance_interval: Duration::from_millis(20),
        shutdown_deadline: Duration::from_secs(5),
        ..QueueSettings::default()
    }
}
