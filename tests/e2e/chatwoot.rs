//! The Chatwoot client against the fake Chatwoot, over real HTTP: every call round-trips,
//! errors are classified as the retry policy needs, and the fake keeps Chatwoot's quirks.

use std::time::Duration;

use copydesk::chatwoot::{
    AssignOutcome, Assignment, AvailabilityStatus, ChatwootClient, ChatwootError,
    ConversationPriority, ConversationStatus, MessagePage, MessageType, NewMessage,
};
use copydesk_testkit::fake_chatwoot::{Endpoint, FakeChatwoot, FakeSender, Fault, Seed};
use serde_json::{json, Value};

async fn demo() -> (FakeChatwoot, ChatwootClient) {
    let fake = FakeChatwoot::start(Seed::demo()).await;
    let client = ChatwootClient::new(&fake.client_config()).expect("client builds");
    (fake, client)
}

/// A raw request to the fake, for what the client never sends.
async fn raw(
    fake: &FakeChatwoot,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, String) {
    let url = format!(
        "{}/api/v1/accounts/{}/{path}",
        fake.base_url(),
        fake.account_id()
    );
    let response = reqwest::Client::new()
        .request(method, url)
        .header("api_access_token", fake.token())
        .json(&body)
        .send()
        .await
        .expect("the fake answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

#[tokio::test]
async fn a_private_note_is_posted_as_outgoing_and_private() {
    let (fake, client) = demo().await;

    let note = client
        .post_private_note(101, "AN-6 is 3/8 inch tube OD.")
        .await
        .expect("note posted");

    assert_eq!(note.message_type, MessageType::Outgoing);
    assert!(note.private);
    assert_eq!(note.conversation_id, Some(101));
    let notes = fake.private_notes(101);
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].content.as_deref(),
        Some("AN-6 is 3/8 inch tube OD.")
    );
    assert_eq!(notes[0].sender, FakeSender::User(1));
    let sent = &fake.requests_to(Endpoint::CreateMessage)[0];
    assert_eq!(
        sent.body.as_ref().expect("json body")["message_type"],
        json!("outgoing")
    );
    assert_eq!(
        sent.body.as_ref().expect("json body")["private"],
        json!(true)
    );
    assert_eq!(sent.api_access_token.as_deref(), Some(fake.token()));
    assert!(
        fake.public_replies(101).is_empty(),
        "a note is never public"
    );
}

#[tokio::test]
async fn a_public_reply_with_an_idempotency_key_can_be_found_again() {
    let (fake, client) = demo().await;
    let reply =
        NewMessage::public_reply("Use a new crush washer.").with_idempotency_key("copydesk:appr-1");

    let posted = client
        .create_message(102, &reply)
        .await
        .expect("reply posted");
    let found = client
        .find_message_by_idempotency_key(102, "copydesk:appr-1")
        .await
        .expect("listed");

    assert!(!posted.private);
    assert_eq!(posted.idempotency_key(), Some("copydesk:appr-1"));
    assert_eq!(found.map(|m| m.id), Some(posted.id));
    assert_eq!(fake.public_replies(102).len(), 1);
    assert_eq!(
        fake.public_replies(102)[0].source_id.as_deref(),
        Some("copydesk:appr-1")
    );
    assert_eq!(
        client
            .find_message_by_idempotency_key(102, "copydesk:other")
            .await
            .expect("listed"),
        None
    );
}

#[tokio::test]
async fn messages_are_listed_oldest_first_twenty_per_page() {
    let (fake, client) = demo().await;
    for i in 0..25 {
        fake.add_incoming_message(103, &format!("follow-up {i}"))
            .expect("conversation exists");
    }

    let latest = client
        .list_messages(103, MessagePage::Latest)
        .await
        .expect("latest page");
    let oldest_id = latest.messages[0].id;
    let earlier = client
        .list_messages(103, MessagePage::Before(oldest_id))
        .await
        .expect("earlier page");
    let after = client
        .list_messages(103, MessagePage::After(earlier.messages[0].id))
        .await
        .expect("after");

    assert_eq!(latest.messages.len(), 20);
    assert_eq!(
        latest.messages.last().and_then(|m| m.content.as_deref()),
        Some("follow-up 24")
    );
    assert!(latest
        .messages
        .windows(2)
        .all(|w| w[0].id < w[1].id && w[0].created_at < w[1].created_at));
    assert_eq!(
        earlier.messages.len(),
        6,
        "the seeded message and five follow-ups"
    );
    assert_eq!(
        earlier.messages[0].content.as_deref(),
        Some("Need fuel system design for 1500 HP twin turbo on E85.")
    );
    assert_eq!(earlier.messages[0].message_type, MessageType::Incoming);
    assert_eq!(after.messages.len(), 25);
}

#[tokio::test]
async fn the_conversation_shows_status_priority_assignee_team_and_contact() {
    let (_fake, client) = demo().await;
    client
        .assign(103, Assignment::Team(4))
        .await
        .expect("team assigned");
    client
        .assign(103, Assignment::Agent(3))
        .await
        .expect("agent assigned");
    client
        .toggle_priority(103, Some(ConversationPriority::High))
        .await
        .expect("priority set");

    let conversation = client.get_conversation(103).await.expect("conversation");

    assert_eq!(conversation.id, 103);
    assert_eq!(conversation.status, ConversationStatus::Open);
    assert_eq!(conversation.priority, Some(ConversationPriority::High));
    assert_eq!(conversation.meta.assignee.as_ref().map(|a| a.id), Some(3));
    assert_eq!(
        conversation.meta.team.as_ref().map(|t| t.name.as_str()),
        Some("Senior Operators")
    );
    let contact = conversation.meta.sender.expect("contact");
    assert_eq!(contact.name.as_deref(), Some("Alex Turner"));
    assert_eq!(contact.custom_attributes.get("vip"), Some(&json!(true)));
    assert_eq!(
        conversation.messages.len(),
        1,
        "show carries the last message only"
    );
}

#[tokio::test]
async fn status_and_priority_toggle_and_clear() {
    let (fake, client) = demo().await;

    let resolved = client
        .toggle_status(101, ConversationStatus::Resolved, None)
        .await
        .expect("resolved");
    let snoozed = client
        .toggle_status(102, ConversationStatus::Snoozed, Some(1_900_000_000))
        .await
        .expect("snoozed");
    client
        .toggle_priority(101, Some(ConversationPriority::Urgent))
        .await
        .expect("urgent");
    client.toggle_priority(101, None).await.expect("cleared");

    assert_eq!(
        (resolved.current_status, resolved.conversation_id),
        (ConversationStatus::Resolved, 101)
    );
    assert!(resolved.success);
    assert_eq!(
        fake.conversation(101).expect("exists").status,
        ConversationStatus::Resolved
    );
    assert_eq!(fake.conversation(101).expect("exists").priority, None);
    assert_eq!(snoozed.current_status, ConversationStatus::Snoozed);
    assert_eq!(
        fake.conversation(102).expect("exists").snoozed_until,
        Some(1_900_000_000)
    );
    let sent = &fake.requests_to(Endpoint::TogglePriority)[1];
    assert_eq!(sent.body, Some(json!({"priority": null})));
}

#[tokio::test]
async fn assignment_answers_what_chatwoot_did() {
    let (fake, client) = demo().await;

    let agent = client
        .assign(101, Assignment::Agent(2))
        .await
        .expect("assigned");
    let team = client.assign(101, Assignment::Team(2)).await.expect("team");
    let to_other_team = client
        .assign(101, Assignment::Team(3))
        .await
        .expect("other team");
    let unknown_agent = client
        .assign(102, Assignment::Agent(2))
        .await
        .and(client.assign(102, Assignment::Agent(999)).await);
    let unassigned = client
        .assign(101, Assignment::Unassign)
        .await
        .expect("unassigned");

    assert!(matches!(agent, AssignOutcome::Agent(ref a) if a.id == 2 && a.name == "Maria Lopez"));
    assert!(matches!(team, AssignOutcome::Team(ref t) if t.name == "Product Q&A"));
    assert!(matches!(to_other_team, AssignOutcome::Team(ref t) if t.name == "Managers"));
    assert_eq!(
        unknown_agent.expect("unknown agent answers 200"),
        AssignOutcome::Cleared
    );
    assert_eq!(
        fake.conversation(102).expect("exists").assignee_id,
        None,
        "an unknown agent unassigns"
    );
    assert_eq!(unassigned, AssignOutcome::Cleared);
    let c101 = fake.conversation(101).expect("exists");
    assert_eq!((c101.assignee_id, c101.team_id), (None, Some(3)));
}

#[tokio::test]
async fn moving_to_a_team_drops_an_assignee_who_is_not_a_member() {
    let (fake, client) = demo().await;
    client
        .assign(101, Assignment::Agent(2))
        .await
        .expect("assigned");

    client
        .assign(101, Assignment::Team(2))
        .await
        .expect("Maria is in Product Q&A");
    let kept = fake.conversation(101).expect("exists").assignee_id;
    client
        .assign(101, Assignment::Team(5))
        .await
        .expect("Maria is not in Safety");

    assert_eq!(kept, Some(2));
    assert_eq!(fake.conversation(101).expect("exists").assignee_id, None);
}

#[tokio::test]
async fn agents_teams_and_members_are_listed_with_availability() {
    let (fake, client) = demo().await;
    fake.set_agent_availability(3, AvailabilityStatus::Offline);

    let agents = client.list_agents().await.expect("agents");
    let teams = client.list_teams().await.expect("teams");
    let safety = teams
        .iter()
        .find(|t| t.name == "Safety")
        .expect("Safety team");
    let members = client.list_team_members(safety.id).await.expect("members");

    let status_of = |id| {
        agents
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.availability_status)
    };
    assert_eq!(status_of(2), Some(AvailabilityStatus::Online));
    assert_eq!(status_of(3), Some(AvailabilityStatus::Offline));
    assert_eq!(status_of(4), Some(AvailabilityStatus::Busy));
    let names: Vec<_> = teams.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Order Support",
            "Product Q&A",
            "Managers",
            "Senior Operators",
            "Safety"
        ]
    );
    let mut member_ids: Vec<_> = members.iter().map(|a| a.id).collect();
    member_ids.sort_unstable();
    assert_eq!(member_ids, [4, 5, 7]);
    let err = client.list_team_members(99).await.expect_err("no team 99");
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn a_wrong_token_is_a_permanent_401() {
    let fake = FakeChatwoot::start(Seed::demo()).await;
    let mut config = fake.client_config();
    config.api_token = "not-the-token".to_owned().into();
    let client = ChatwootClient::new(&config).expect("client builds");

    let err = client
        .post_private_note(101, "draft")
        .await
        .expect_err("unauthorized");

    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    assert!(!err.is_ambiguous());
    assert!(err.to_string().contains("Invalid Access Token"), "{err}");
    assert!(
        fake.messages(101).iter().all(|m| !m.private),
        "nothing was stored"
    );
}

#[tokio::test]
async fn an_unknown_conversation_or_account_is_a_permanent_404() {
    let fake = FakeChatwoot::start(Seed::demo()).await;
    let client = ChatwootClient::new(&fake.client_config()).expect("client builds");
    let mut other_account = fake.client_config();
    other_account.account_id = 2;
    let other = ChatwootClient::new(&other_account).expect("client builds");

    let missing = client
        .get_conversation(999)
        .await
        .expect_err("no conversation 999");
    let wrong_account = other.list_agents().await.expect_err("no account 2");

    for err in [missing, wrong_account] {
        assert_eq!(err.status(), Some(404));
        assert!(!err.is_retryable());
    }
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable_and_not_applied() {
    let (fake, client) = demo().await;
    fake.fail_next_on(Endpoint::CreateMessage, 1, Fault::Status(500));
    fake.fail_next_on(Endpoint::CreateMessage, 1, Fault::Status(429));

    let server_error = client
        .post_private_note(101, "draft")
        .await
        .expect_err("500");
    let rate_limited = client
        .post_private_note(101, "draft")
        .await
        .expect_err("429");
    let third = client.post_private_note(101, "draft").await;

    assert_eq!(server_error.status(), Some(500));
    assert_eq!(rate_limited.status(), Some(429));
    for err in [&server_error, &rate_limited] {
        assert!(err.is_retryable());
        assert!(!err.is_ambiguous());
    }
    assert!(third.is_ok(), "the faults were used up");
    assert_eq!(
        fake.private_notes(101).len(),
        1,
        "failed attempts stored nothing"
    );
}

#[tokio::test]
async fn a_connection_dropped_after_apply_is_ambiguous_and_the_reply_exists_once() {
    let (fake, client) = demo().await;
    fake.fail_next_on(Endpoint::CreateMessage, 1, Fault::DropAfterApply);
    let reply = NewMessage::public_reply("Torque AN fittings finger tight plus a quarter turn.")
        .with_idempotency_key("copydesk:appr-102");

    let err = client
        .create_message(102, &reply)
        .await
        .expect_err("no answer");
    // What the send_reply worker does: check before posting again.
    let existing = client
        .find_message_by_idempotency_key(102, "copydesk:appr-102")
        .await
        .expect("listed");
    if existing.is_none() {
        client.create_message(102, &reply).await.expect("re-posted");
    }

    assert!(
        matches!(err, ChatwootError::ConnectionLost { .. }),
        "{err:?}"
    );
    assert!(err.is_ambiguous());
    assert!(err.is_retryable());
    assert!(existing.is_some(), "the dropped request was applied");
    assert_eq!(fake.public_replies(102).len(), 1, "exactly one reply");
    assert_eq!(
        fake.requests_to(Endpoint::CreateMessage)[0].status,
        None,
        "the fake never answered"
    );
}

#[tokio::test]
async fn an_answer_later_than_the_timeout_is_ambiguous() {
    let fake = FakeChatwoot::start(Seed::demo()).await;
    let mut config = fake.client_config();
    config.timeout = Duration::from_millis(200);
    let client = ChatwootClient::new(&config).expect("client builds");
    fake.fail_next_on(
        Endpoint::CreateMessage,
        1,
        Fault::Delay(Duration::from_secs(5)),
    );

    let err = client
        .post_private_note(101, "slow draft")
        .await
        .expect_err("timed out");

    assert!(matches!(err, ChatwootError::Timeout { .. }), "{err:?}");
    assert!(err.is_ambiguous() && err.is_retryable());
    assert_eq!(
        fake.private_notes(101).len(),
        1,
        "applied although the client gave up"
    );
}

#[tokio::test]
async fn a_closed_port_is_a_retryable_connect_error_that_was_not_applied() {
    let fake = FakeChatwoot::start(Seed::demo()).await;
    let config = fake.client_config();
    drop(fake);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let closed = listener.local_addr().expect("addr");
    drop(listener);
    let mut config = config;
    config.base_url = format!("http://{closed}");
    let client = ChatwootClient::new(&config).expect("client builds");

    let err = client.list_agents().await.expect_err("nothing listens");

    assert!(matches!(err, ChatwootError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(!err.is_ambiguous());
}

#[tokio::test]
async fn calls_are_counted_by_endpoint_and_status() {
    let handle = copydesk::metrics::install();
    let (fake, client) = demo().await;
    fake.fail_next_on(Endpoint::ListTeams, 1, Fault::Status(503));

    let _ = client.list_teams().await;
    let _ = client.list_teams().await;

    let text = handle.render();
    let has = |status: &str| {
        text.lines().any(|l| {
            l.starts_with("copydesk_chatwoot_requests_total")
                && l.contains("endpoint=\"list_teams\"")
                && l.contains(&format!("status=\"{status}\""))
        })
    };
    assert!(has("503") && has("200"), "{text}");
}

#[tokio::test]
async fn priority_none_from_the_spec_is_a_500_and_nothing_changes() {
    let (fake, client) = demo().await;
    client
        .toggle_priority(101, Some(ConversationPriority::Low))
        .await
        .expect("low");

    let (status, _) = raw(
        &fake,
        reqwest::Method::POST,
        "conversations/101/toggle_priority",
        json!({"priority": "none"}),
    )
    .await;
    let (empty_status, _) = raw(
        &fake,
        reqwest::Method::POST,
        "conversations/102/toggle_priority",
        json!({"priority": ""}),
    )
    .await;

    assert_eq!(status, 500);
    assert_eq!(
        fake.conversation(101).expect("exists").priority,
        Some(ConversationPriority::Low)
    );
    assert_eq!(empty_status, 200, "blank means no priority");
}

#[tokio::test]
async fn put_on_a_conversation_ignores_status_but_sets_priority() {
    let (fake, _client) = demo().await;

    let (status, body) = raw(
        &fake,
        reqwest::Method::PUT,
        "conversations/101",
        json!({"status": "resolved", "priority": "high"}),
    )
    .await;

    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["status"], json!("open"));
    let conversation = fake.conversation(101).expect("exists");
    assert_eq!(conversation.status, ConversationStatus::Open);
    assert_eq!(conversation.priority, Some(ConversationPriority::High));
}

#[tokio::test]
async fn integer_zero_is_stored_as_a_customer_message_and_reopens_the_conversation() {
    let (fake, client) = demo().await;
    client
        .toggle_status(101, ConversationStatus::Resolved, None)
        .await
        .expect("resolved");

    let (status, body) = raw(
        &fake,
        reqwest::Method::POST,
        "conversations/101/messages",
        json!({"content": "oops", "message_type": 0, "private": true}),
    )
    .await;

    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["message_type"], json!(0));
    let stored = fake.messages(101).pop().expect("stored");
    assert_eq!(stored.message_type, MessageType::Incoming);
    assert_eq!(
        stored.sender,
        FakeSender::Contact(11),
        "from the customer, not the agent"
    );
    assert_eq!(
        fake.conversation(101).expect("exists").status,
        ConversationStatus::Open
    );
}

#[tokio::test]
async fn incoming_by_name_is_refused_in_a_web_inbox_and_invalid_bodies_are_rejected() {
    let (fake, _client) = demo().await;
    let post = |body: Value| {
        raw(
            &fake,
            reqwest::Method::POST,
            "conversations/101/messages",
            body,
        )
    };

    let (incoming, incoming_body) =
        post(json!({"content": "hi", "message_type": "incoming"})).await;
    let (bogus_type, _) = post(json!({"content": "hi", "message_type": "reply"})).await;
    let (bad_code, _) = post(json!({"content": "hi", "message_type": 7})).await;
    let (no_content, _) = post(json!({"message_type": "outgoing", "private": true})).await;
    let before = fake.messages(101).len();
    let url = format!(
        "{}/api/v1/accounts/1/conversations/101/messages",
        fake.base_url()
    );
    let malformed = reqwest::Client::new()
        .post(url)
        .header("api_access_token", fake.token())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("answers")
        .status()
        .as_u16();

    assert_eq!(incoming, 422);
    assert!(incoming_body.contains("Incoming messages are only allowed in Api inboxes"));
    assert_eq!(
        (bogus_type, bad_code, no_content, malformed),
        (422, 422, 422, 400)
    );
    assert_eq!(fake.messages(101).len(), before);
    assert_eq!(before, 1, "only the seeded customer message");
}

#[tokio::test]
async fn unknown_routes_wrong_methods_and_missing_tokens_are_refused() {
    let fake = FakeChatwoot::start(Seed::demo()).await;
    let http = reqwest::Client::new();
    let base = format!("{}/api/v1/accounts/1", fake.base_url());
    let status = |r: reqwest::Response| r.status().as_u16();

    let unknown = http
        .get(format!("{base}/conversations/101/labels"))
        .header("api_access_token", fake.token());
    let wrong_method = http
        .delete(format!("{base}/conversations/101"))
        .header("api_access_token", fake.token());
    let no_token = http.get(format!("{base}/agents"));

    assert_eq!(status(unknown.send().await.expect("answers")), 404);
    assert_eq!(status(wrong_method.send().await.expect("answers")), 404);
    let no_token = no_token.send().await.expect("answers");
    assert_eq!(status(no_token), 401);
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[2].endpoint, Some(Endpoint::ListAgents));
    assert_eq!(recorded[2].status, Some(401));
}
