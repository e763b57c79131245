//! Older Chatwoot (unsigned webhooks) and agent bots (issue 10): legacy mode's token URL and
//! event-time window, replay dedupe, both modes at once; agent-bot retries with the same
//! delivery id; a conversation pending with the bot is drafted but never opened or assigned
//! (unless `COPYDESK_BOT_HANDOFF=1`).

use std::sync::Arc;

use copydesk::accounts::{Account, Accounts};
use copydesk::chatwoot::{ChatwootClient, ConversationStatus};
use copydesk::jobs::{AssignConversation, AssignReason, JobMeta};
use copydesk::queue::{JobAttempt, QueueClient};
use copydesk::signature::parse_secrets;
use copydesk_ingress::legacy::LegacyConfig;
use copydesk_testkit::fake_chatwoot::{Endpoint, FakeChatwoot, Seed};
use copydesk_testkit::ingress_app::{spawn_ingress_with, test_config, unique_prefix, TestIngress};
use copydesk_testkit::pipeline::demo_routing_file;
use copydesk_testkit::webhook::{chatwoot_json, incoming_message, unix_now, WebhookSender};
use copydesk_testkit::RedisServer;
use copydesk_workers::jobs::assign_conversation::{self, Routed, PENDING_WITH_BOT};
use copydesk_workers::jobs::Deps;
use copydesk_workers::routing::RoutingTable;
use serde_json::Value;

const LEGACY_TOKEN: &str = "legacy-url-token-0123456789abcdefghijklmnop";
const SECRET: &str = "signed-webhook-secret-of-account-one";

/// A customer message of account 1 created `age_secs` ago.
fn message(id: i64, age_secs: i64) -> Value {
    let mut payload = incoming_message(id, 101, "Do you stock AN-6 hose ends?");
    payload["account"]["id"] = serde_json::json!(1);
    // Unix seconds (Chatwoot sends ISO text here; the parser takes both).
    payload["created_at"] = serde_json::json!(unix_now() - age_secs);
    payload
}

async fn ingress(redis: &RedisServer, legacy: bool) -> TestIngress {
    let mut config = test_config(&redis.url(), &unique_prefix("legacy"));
    config.webhook_secrets = Vec::new();
    config.accounts = Accounts::new(vec![Account {
        id: 1,
        api_token: None,
        webhook_secrets: parse_secrets(SECRET),
        legacy_token: Some(LEGACY_TOKEN.into()),
    }])
    .expect("valid accounts");
    config.legacy = legacy.then(LegacyConfig::default);
    spawn_ingress_with(config).await
}

/// Posts `payload` unsigned to `/webhooks/chatwoot/{token}` (no delivery header, as older
/// Chatwoot sends it).
async fn post_legacy(ingress: &TestIngress, token: &str, payload: &Value) -> (u16, Value) {
    let response = ingress
        .http
        .post(ingress.url(&format!("/webhooks/chatwoot/{token}")))
        .header("content-type", "application/json")
        .body(chatwoot_json(payload))
        .send()
        .await
        .expect("the ingress answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_token_url_accepts_fresh_events_once_and_refuses_wrong_tokens_and_stale_events() {
    let redis = RedisServer::start();
    let ingress = ingress(&redis, true).await;

    let (status, body) = post_legacy(&ingress, LEGACY_TOKEN, &message(5_001, 5)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(ingress.queued_jobs("lookup_knowledge").await.len(), 1);

    // The same request again (a replay within the window): deduped by its cause key.
    let (status, body) = post_legacy(&ingress, LEGACY_TOKEN, &message(5_001, 5)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );

    // Wrong tokens: a near miss (last character), a prefix, another length: 401, nothing queued.
    let near = format!("{}X", &LEGACY_TOKEN[..LEGACY_TOKEN.len() - 1]);
    for token in [
        near.as_str(),
        &LEGACY_TOKEN[..20],
        "x",
        &format!("{LEGACY_TOKEN}0"),
    ] {
        let (status, body) = post_legacy(&ingress, token, &message(5_002, 5)).await;
        assert_eq!(status, 401, "{token}: {body}");
        assert_eq!(body["error"], "unauthorized");
    }
    // A valid token never vouches for another account's payload.
    let mut other = message(5_003, 5);
    other["account"]["id"] = serde_json::json!(2);
    assert_eq!(post_legacy(&ingress, LEGACY_TOKEN, &other).await.0, 401);
    assert_eq!(ingress.queued_jobs("lookup_knowledge").await.len(), 1);

    // An event older (or newer) than the window: refused, saying why.
    for age in [3_600, -3_600] {
        let (status, body) = post_legacy(&ingress, LEGACY_TOKEN, &message(5_004, age)).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "stale_event", "{body}");
        let text = body["message"].as_str().unwrap_or_default();
        assert!(text.contains("legacy window of 600 s"), "{text}");
    }
    assert_eq!(ingress.queued_jobs("lookup_knowledge").await.len(), 1);

    // Both modes at once: a signed webhook on the plain path still works.
    let signed = WebhookSender::new(
        ingress.http.clone(),
        ingress.url("/webhooks/chatwoot"),
        SECRET,
    );
    let response = signed.post(&message(5_005, 5)).await.expect("answers");
    assert_eq!(response.status().as_u16(), 202);
    // And an unsigned one on the plain path does not.
    let response = signed
        .unsigned(chatwoot_json(&message(5_006, 5)), "d-1")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(ingress.queued_jobs("lookup_knowledge").await.len(), 2);

    // The token appears in no metric.
    assert!(!ingress.metrics().await.contains(LEGACY_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_mode_is_off_by_default() {
    let redis = RedisServer::start();
    let ingress = ingress(&redis, false).await;
    let (status, _) = post_legacy(&ingress, LEGACY_TOKEN, &message(5_101, 5)).await;
    assert_eq!(
        status, 404,
        "no legacy route unless COPYDESK_LEGACY_WEBHOOKS=1"
    );
    assert!(ingress.queued_jobs("lookup_knowledge").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_bot_retry_with_the_same_delivery_id_is_deduped() {
    let redis = RedisServer::start();
    let ingress = ingress(&redis, false).await;
    let signed = WebhookSender::new(
        ingress.http.clone(),
        ingress.url("/webhooks/chatwoot"),
        SECRET,
    );
    // Chatwoot retries an agent-bot delivery 3× on 429/500 with the same delivery id.
    let payload = message(5_201, 1);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = signed
            .post_as(&payload, "bot-delivery-1")
            .await
            .expect("answers");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, vec![202, 200, 200, 200]);
    assert_eq!(ingress.queued_jobs("lookup_knowledge").await.len(), 1);
}

/// The assigner on account 1 of a fake whose conversation 101 is pending with a bot.
async fn assigner_on_pending(
    handoff: bool,
) -> (RedisServer, FakeChatwoot, assign_conversation::Handler) {
    let redis = RedisServer::start();
    let mut seed = Seed::demo();
    for c in &mut seed.conversations {
        if c.conversation.id == 101 {
            c.conversation.status = ConversationStatus::Pending;
            c.conversation.assignee_id = None;
            c.conversation.team_id = None;
        }
    }
    let fake = FakeChatwoot::start(seed).await;
    let queue = QueueClient::build(&redis.redis_config(&unique_prefix("bot")))
        .await
        .expect("queue client");
    let chatwoot = ChatwootClient::new(&fake.client_config()).expect("client");
    let text = std::fs::read_to_string(demo_routing_file()).expect("routing file");
    let table = RoutingTable::from_toml_str(&text, "demo routing").expect("valid table");
    let handler =
        assign_conversation::Handler::new(Deps::new(queue, Some(chatwoot)), Arc::new(table))
            .with_bot_handoff(handoff);
    (redis, fake, handler)
}

fn drafted_job() -> AssignConversation {
    AssignConversation {
        meta: JobMeta::new("bot-test".parse().expect("a valid delivery id"), 0),
        account_id: copydesk::domain::AccountId::new(1),
        conversation_id: copydesk::domain::ConversationId::new(101),
        reason: AssignReason::Drafted {
            approval_id: "1-101-1".parse().expect("a valid approval id"),
            priority: copydesk::domain::Priority::Normal,
            text: "What size is an AN-6 fitting?".into(),
            vip: false,
        },
    }
}

fn attempt() -> JobAttempt {
    JobAttempt {
        attempt: 1,
        max_attempts: 5,
        redelivered: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conversation_pending_with_the_bot_is_neither_opened_nor_assigned() {
    let (_redis, fake, handler) = assigner_on_pending(false).await;
    let routed = handler
        .assign(&drafted_job(), attempt())
        .await
        .expect("no error");
    assert_eq!(routed, Routed::Skipped(PENDING_WITH_BOT));
    let conversation = fake.conversation(101).expect("exists");
    assert_eq!(conversation.status, ConversationStatus::Pending);
    assert_eq!(
        (conversation.assignee_id, conversation.team_id),
        (None, None)
    );
    for endpoint in [
        Endpoint::Assign,
        Endpoint::ToggleStatus,
        Endpoint::TogglePriority,
    ] {
        assert!(fake.requests_to(endpoint).is_empty(), "{endpoint:?} called");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_bot_handoff_the_conversation_is_opened_then_routed() {
    let (_redis, fake, handler) = assigner_on_pending(true).await;
    let routed = handler
        .assign(&drafted_job(), attempt())
        .await
        .expect("no error");
    assert!(
        matches!(routed, Routed::Assigned { .. } | Routed::Waiting { .. }),
        "{routed:?}"
    );
    let conversation = fake.conversation(101).expect("exists");
    assert_eq!(conversation.status, ConversationStatus::Open);
    assert_eq!(fake.requests_to(Endpoint::ToggleStatus).len(), 1);
    assert!(conversation.team_id.is_some(), "routed to a team");
}
