//! The operator ops API end to end: the real ingress with its ops listener (`with_ops`), a
//! private `redis-server` per test, approval items stored directly in the approval store,
//! dead letters made by a worker whose handler fails permanently.

use std::time::Duration;

use copydesk::approvals::{Action, ApprovalStore, DraftDoc, Priority, SourceRef};
use copydesk::domain::{AccountId, ConversationId};
use copydesk::events::{publish_event, EventKind};
use copydesk::jobs::{JobMeta, PostNote};
use copydesk::learning;
use copydesk::queue::{
    run_until_empty, DrainOutcome, JobAttempt, JobError, Keys, QueueClient, QueueSettings,
};
use copydesk_ingress::{Application, ShutdownOutcome};
use copydesk_testkit::ingress_app::{with_ops, TestIngress, TEST_OPS_TOKEN};
use copydesk_testkit::testbed::TestBed;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Generous bound for anything asynchronous a test waits for.
const PATIENCE: Duration = Duration::from_secs(10);

struct Ops {
    app: TestIngress,
    queue: QueueClient,
    store: ApprovalStore,
    _bed: TestBed,
}

impl Ops {
    async fn start(label: &str) -> Self {
        let bed = TestBed::start(label);
        let app = bed.ingress_with(with_ops).await;
        let queue = bed.queue().await;
        let store = ApprovalStore::for_queue(&queue);
        Self {
            app,
            queue,
            store,
            _bed: bed,
        }
    }

    fn keys(&self) -> &Keys {
        self.queue.keys()
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .http
            .request(method, self.app.ops_url(path))
            .bearer_auth(TEST_OPS_TOKEN)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        answer(self.request(reqwest::Method::GET, path)).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        answer(self.request(reqwest::Method::POST, path).json(&body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        answer(self.request(reqwest::Method::DELETE, path)).await
    }

    async fn create(&self, doc: &DraftDoc) {
        self.store.create(doc).await.expect("draft stored");
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the ops API answers");
    let status = response.status();
    let body = response.json().await.expect("every answer is JSON");
    (status, body)
}

/// A pending draft for conversation `conversation` (one draft in flight per conversation).
fn draft(conversation: i64, priority: Priority, created_at_ms: i64) -> DraftDoc {
    let message = conversation * 10;
    DraftDoc {
        id: ApprovalStore::approval_id(1, conversation, message),
        account_id: 1,
        conversation_id: conversation,
        message_id: message,
        customer_message: "Do the -6 AN fittings fit a 3/8 hose?".into(),
        draft: "Yes, -6 AN fittings fit 3/8 inch hose.".into(),
        confidence: 82,
        action: Action::Review,
        priority,
        sentiment: "neutral".into(),
        sources: vec![SourceRef {
            source: "guides/an-sizes.md".into(),
            title: "AN sizes".into(),
            relevance: 0.9,
        }],
        degraded: vec![],
        placeholder: false,
        safety: false,
        vip: false,
        suspicious: Vec::new(),
        drafter: "extractive".into(),
        delivery_id: format!("d-{conversation}"),
        received_at_ms: created_at_ms - 100,
        created_at_ms,
        traceparent: None,
        tracestate: None,
    }
}

/// The JSON payloads on `queue`'s stream, oldest first.
async fn queued(ops: &Ops, queue: &str) -> Vec<Value> {
    ops.app.queued_jobs(queue).await
}

async fn learning_records(ops: &Ops) -> Vec<learning::LearningRecord> {
    let mut conn = ops.queue.connection();
    learning::read_since(&mut conn, ops.keys(), 0)
        .await
        .expect("learning stream readable")
}

#[tokio::test]
async fn an_ops_listener_without_a_token_refuses_to_start_naming_the_variable() {
    // Arrange
    let bed = TestBed::start("ops-token");
    let mut config = with_ops(bed.ingress_config());
    if let Some(ops) = config.ops.as_mut() {
        ops.token = "  ".into();
    }

    // Act
    let built = Application::build(config).await;

    // Assert
    let error = built.expect_err("a blank ops token is refused");
    assert!(error.to_string().contains("COPYDESK_OPS_TOKEN"), "{error}");
}

#[tokio::test]
async fn requests_without_the_right_bearer_token_get_401() {
    // Arrange
    let ops = Ops::start("ops-auth").await;
    ops.create(&draft(1, Priority::Normal, 1_000)).await;
    let url = ops.app.ops_url("/api/approvals");

    // Act
    let missing = answer(ops.app.http.get(&url)).await;
    let wrong = answer(ops.app.http.get(&url).bearer_auth("not-the-token")).await;
    let basic = answer(
        ops.app
            .http
            .get(&url)
            .basic_auth("op", Some(TEST_OPS_TOKEN)),
    )
    .await;
    let unknown_path = answer(ops.app.http.get(ops.app.ops_url("/api/nothing"))).await;
    let right = ops.get("/api/approvals").await;
    let on_webhook_listener = ops.app.get("/api/approvals").await.status();

    // Assert
    for (status, body) in [&missing, &wrong, &basic, &unknown_path] {
        assert_eq!(*status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "unauthorized");
    }
    assert_eq!(right.0, StatusCode::OK, "{}", right.1);
    assert_eq!(
        on_webhook_listener,
        StatusCode::NOT_FOUND,
        "the ops API is not served on the webhook listener"
    );
}

#[tokio::test]
async fn pending_approvals_are_listed_urgent_first_then_oldest_first_and_paginated() {
    // Arrange
    let ops = Ops::start("ops-list").await;
    ops.create(&draft(1, Priority::Normal, 1_000)).await;
    ops.create(&draft(2, Priority::Low, 500)).await;
    ops.create(&draft(3, Priority::Urgent, 3_000)).await;
    ops.create(&draft(4, Priority::Normal, 2_000)).await;

    // Act
    let (status, all) = ops.get("/api/approvals").await;
    let (_, page) = ops
        .get("/api/approvals?status=pending&offset=1&limit=2")
        .await;
    let (bad_status, bad) = ops.get("/api/approvals?status=maybe").await;
    let (bad_limit, limit_error) = ops.get("/api/approvals?limit=lots").await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{all}");
    let ids: Vec<&str> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["1-3-30", "1-1-10", "1-4-40", "1-2-20"]);
    assert_eq!(all["status"], "pending");
    assert_eq!(all["pending_count"], 4);
    let page_ids: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("id"))
        .collect();
    assert_eq!(page_ids, ["1-1-10", "1-4-40"]);
    assert_eq!(page["next_offset"], 3);
    assert_eq!(bad_status, StatusCode::BAD_REQUEST);
    assert!(bad["message"].as_str().expect("message").contains("status"));
    assert_eq!(bad_limit, StatusCode::BAD_REQUEST);
    assert!(limit_error["message"]
        .as_str()
        .expect("message")
        .contains("limit"));
}

#[tokio::test]
async fn approving_queues_exactly_one_send_reply_and_records_the_decision() {
    // Arrange
    let ops = Ops::start("ops-approve").await;
    let doc = draft(7, Priority::High, 1_000);
    ops.create(&doc).await;

    // Act
    let (status, item) = ops
        .post(
            &format!("/api/approvals/{}/approve", doc.id),
            json!({ "operator": "dana" }),
        )
        .await;
    let (_, fetched) = ops.get(&format!("/api/approvals/{}", doc.id)).await;
    let (_, pending) = ops.get("/api/approvals").await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["status"], "approved");
    assert_eq!(item["decision"]["decision"], "approve");
    assert_eq!(item["decision"]["operator"], "dana");
    assert_eq!(item["reply_text"], doc.draft.as_str());
    assert_eq!(fetched["status"], "approved");
    assert_eq!(
        pending["items"].as_array().map(Vec::len),
        Some(0),
        "{pending}"
    );
    let jobs = queued(&ops, "send_reply").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["approval_id"], doc.id.as_str());
    assert_eq!(jobs[0]["conversation_id"], 7);
    assert_eq!(
        jobs[0]["meta"]["delivery_id"],
        format!("ops:{}", doc.id).as_str()
    );
    assert!(jobs[0]["meta"]["received_at_ms"].as_i64().unwrap_or(0) > 0);
    let records = learning_records(&ops).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.decision, "approve");
    assert_eq!(record.operator, "dana");
    assert_eq!(record.final_text.as_deref(), Some(doc.draft.as_str()));
    assert_eq!(record.edit_distance, Some(0));
    assert_eq!(
        record.word_diff.as_ref().map(|d| d.summary.as_str()),
        Some("unchanged")
    );
    assert_eq!(record.confidence, 82);
    assert_eq!(record.sources.len(), 1);
    assert!(!record.was_sent);
    assert_eq!(record.conversation_id, 7);
}

#[tokio::test]
async fn an_edit_stores_the_content_and_a_second_decision_gets_409_with_the_status() {
    // Arrange
    let ops = Ops::start("ops-edit").await;
    let doc = draft(8, Priority::Normal, 1_000);
    ops.create(&doc).await;
    let edited = "Yes: -6 AN fittings fit 3/8 inch hose, use the matching hose end.";

    // Act
    let (status, item) = ops
        .post(
            &format!("/api/approvals/{}/edit", doc.id),
            json!({ "operator": "lee", "content": edited }),
        )
        .await;
    let (reject_status, reject) = ops
        .post(
            &format!("/api/approvals/{}/reject", doc.id),
            json!({ "operator": "kim", "reason": "wrong" }),
        )
        .await;
    let (again_status, again) = ops
        .post(
            &format!("/api/approvals/{}/edit", doc.id),
            json!({ "operator": "lee", "content": edited }),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["status"], "edited");
    assert_eq!(item["decision"]["content"], edited);
    assert_eq!(item["reply_text"], edited);
    assert_eq!(
        item["draft"],
        doc.draft.as_str(),
        "the draft itself is kept"
    );
    assert_eq!(reject_status, StatusCode::CONFLICT, "{reject}");
    assert_eq!(reject["status"], "edited");
    assert_eq!(again_status, StatusCode::CONFLICT, "{again}");
    assert_eq!(
        queued(&ops, "send_reply").await.len(),
        1,
        "a repeated decision never queues a second reply"
    );
    let records = learning_records(&ops).await;
    assert_eq!(records.len(), 1, "only the applied decision is recorded");
    assert_eq!(records[0].decision, "edit");
    assert_eq!(records[0].final_text.as_deref(), Some(edited));
    assert!(records[0].edit_distance.unwrap_or(0) > 0);
    let diff = records[0].word_diff.as_ref().expect("word diff");
    assert!(diff.added > 0, "{diff:?}");
}

#[tokio::test]
async fn unknown_ids_are_404_and_bad_bodies_are_400_naming_the_field() {
    // Arrange
    let ops = Ops::start("ops-invalid").await;
    let doc = draft(9, Priority::Normal, 1_000);
    ops.create(&doc).await;
    let mut placeholder = draft(10, Priority::Normal, 1_000);
    placeholder.placeholder = true;
    ops.create(&placeholder).await;
    let path = |action: &str| format!("/api/approvals/{}/{action}", doc.id);

    // Act
    let unknown_get = ops.get("/api/approvals/1-404-1").await;
    let unknown_decide = ops
        .post("/api/approvals/1-404-1/approve", json!({ "operator": "x" }))
        .await;
    let no_operator = ops.post(&path("approve"), json!({})).await;
    let blank_content = ops
        .post(&path("edit"), json!({ "operator": "x", "content": "  " }))
        .await;
    let no_reason = ops.post(&path("reject"), json!({ "operator": "x" })).await;
    let no_team = ops
        .post(&path("escalate"), json!({ "operator": "x", "note": "n" }))
        .await;
    let number_operator = ops.post(&path("approve"), json!({ "operator": 5 })).await;
    let not_json = answer(
        ops.request(reqwest::Method::POST, &path("approve"))
            .body("{not json"),
    )
    .await;
    let unknown_action = ops.post(&path("publish"), json!({ "operator": "x" })).await;
    let wrong_method = ops.delete(&format!("/api/approvals/{}", doc.id)).await;
    let approve_placeholder = ops
        .post(
            &format!("/api/approvals/{}/approve", placeholder.id),
            json!({ "operator": "x" }),
        )
        .await;
    let (_, still) = ops.get(&format!("/api/approvals/{}", doc.id)).await;

    // Assert
    assert_eq!(unknown_get.0, StatusCode::NOT_FOUND, "{}", unknown_get.1);
    assert_eq!(
        unknown_decide.0,
        StatusCode::NOT_FOUND,
        "{}",
        unknown_decide.1
    );
    for ((status, body), field) in [
        (&no_operator, "operator"),
        (&blank_content, "content"),
        (&no_reason, "reason"),
        (&no_team, "team"),
        (&number_operator, "operator"),
    ] {
        assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
        let message = body["message"].as_str().expect("a message");
        assert!(message.contains(field), "{message} names {field}");
    }
    assert_eq!(not_json.0, StatusCode::BAD_REQUEST, "{}", not_json.1);
    assert_eq!(
        unknown_action.0,
        StatusCode::NOT_FOUND,
        "{}",
        unknown_action.1
    );
    assert_eq!(wrong_method.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        approve_placeholder.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        approve_placeholder.1
    );
    assert_eq!(
        still["status"], "pending",
        "refused requests change nothing"
    );
    assert!(queued(&ops, "send_reply").await.is_empty());
    assert!(learning_records(&ops).await.is_empty());
}

#[tokio::test]
async fn escalating_queues_an_escalation_assignment_and_no_reply() {
    // Arrange
    let ops = Ops::start("ops-escalate").await;
    let doc = draft(11, Priority::Urgent, 1_000);
    ops.create(&doc).await;

    // Act
    let (status, item) = ops
        .post(
            &format!("/api/approvals/{}/escalate", doc.id),
            json!({ "operator": "sam", "team": "brakes", "note": "brake line leak, call back" }),
        )
        .await;

    // Assert
    assert_eq!(status, StatusCode::OK, "{item}");
    assert_eq!(item["status"], "escalated");
    let jobs = queued(&ops, "assign_conversation").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["conversation_id"], 11);
    assert_eq!(jobs[0]["reason"]["kind"], "escalation");
    assert_eq!(jobs[0]["reason"]["approval_id"], doc.id.as_str());
    assert_eq!(jobs[0]["reason"]["team"], "brakes");
    assert_eq!(jobs[0]["reason"]["note"], "brake line leak, call back");
    assert_eq!(jobs[0]["reason"]["operator"], "sam");
    assert!(queued(&ops, "send_reply").await.is_empty());
    let records = learning_records(&ops).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].team.as_deref(), Some("brakes"));
    assert_eq!(records[0].final_text, None);
}

#[tokio::test]
async fn a_reject_queues_a_reply_only_when_the_operator_wrote_one() {
    // Arrange
    let ops = Ops::start("ops-reject").await;
    let silent = draft(12, Priority::Normal, 1_000);
    let answered = draft(13, Priority::Normal, 1_000);
    ops.create(&silent).await;
    ops.create(&answered).await;

    // Act
    let (silent_status, _) = ops
        .post(
            &format!("/api/approvals/{}/reject", silent.id),
            json!({ "operator": "kim", "reason": "spam" }),
        )
        .await;
    let (answered_status, item) = ops
        .post(
            &format!("/api/approvals/{}/reject", answered.id),
            json!({ "operator": "kim", "reason": "wrong size", "reply": "Use -8 AN for 1/2 hose." }),
        )
        .await;

    // Assert
    assert_eq!(silent_status, StatusCode::OK);
    assert_eq!(answered_status, StatusCode::OK, "{item}");
    assert_eq!(item["status"], "rejected");
    assert_eq!(item["reply_text"], "Use -8 AN for 1/2 hose.");
    let jobs = queued(&ops, "send_reply").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["approval_id"], answered.id.as_str());
    let records = learning_records(&ops).await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.decision == "reject"));
}

fn failing_settings() -> QueueSettings {
    QueueSettings {
        block: Duration::from_millis(100),
        reclaim_interval: Duration::from_millis(100),
        maintenance_interval: Duration::from_millis(20),
        shutdown_deadline: Duration::from_secs(5),
        ..QueueSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_retried_and_deleted_through_the_api() {
    // Arrange: three post_note jobs that fail permanently.
    let ops = Ops::start("ops-dead").await;
    for approval in ["a", "b", "c"] {
        let job = PostNote {
            meta: JobMeta::new(
                format!("d-{approval}")
                    .parse()
                    .expect("a valid delivery id"),
                0,
            ),
            account_id: AccountId::new(1),
            conversation_id: ConversationId::new(2),
            approval_id: approval.parse().expect("a valid approval id"),
        };
        ops.queue.enqueue(&job).await.expect("enqueued");
    }
    let drained = run_until_empty::<PostNote, _, _>(
        ops.queue.clone(),
        failing_settings(),
        |_job: PostNote, _attempt: JobAttempt| async {
            Err::<(), _>(JobError::permanent(anyhow::anyhow!(
                "422 unprocessable note"
            )))
        },
        Duration::from_secs(20),
    )
    .await
    .expect("worker runs");
    assert_eq!(drained, DrainOutcome::Drained);

    // Act + Assert: list, filter, read.
    let (status, list) = ops.get("/api/dead-letters").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 3, "{list}");
    assert_eq!(list["total"], 3);
    assert_eq!(items[0]["queue"], "post_note");
    assert!(items[0]["job"]["approval_id"].is_string());
    let (_, filtered) = ops
        .get("/api/dead-letters?queue=post_note&error=UNPROCESSABLE")
        .await;
    assert_eq!(filtered["items"].as_array().map(Vec::len), Some(3));
    let (_, none) = ops.get("/api/dead-letters?error=timeout").await;
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));
    let (bad_queue, _) = ops.get("/api/dead-letters?queue=nope").await;
    assert_eq!(bad_queue, StatusCode::BAD_REQUEST);
    let (_, queues) = ops.get("/api/queues").await;
    let post_note = queues["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["queue"] == "post_note")
        .expect("post_note listed")
        .clone();
    assert_eq!(post_note["dead"], 3, "{queues}");
    assert_eq!(queues["queues"].as_array().map(Vec::len), Some(6));
    // Redis memory of Copydesk's keys per kind, sampled (at most 50 keys per kind).
    assert_eq!(queues["memory"]["sample_per_kind"], 50, "{queues}");
    let dead_memory = queues["memory"]["kinds"]
        .as_array()
        .expect("memory kinds")
        .iter()
        .find(|k| k["kind"] == "dead letters")
        .expect("dead letters measured")
        .clone();
    assert!(dead_memory["keys"].as_u64() >= Some(2), "{dead_memory}");
    assert!(
        dead_memory["estimated_bytes"].as_u64() > Some(0),
        "{dead_memory}"
    );
    let ids: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    let (got, one) = ops.get(&format!("/api/dead-letters/{}", ids[0])).await;
    assert_eq!(got, StatusCode::OK);
    assert_eq!(one["id"], ids[0].as_str());

    // Retry one: back on its queue.
    let (retried, body) = ops
        .post(&format!("/api/dead-letters/{}/retry", ids[0]), json!({}))
        .await;
    assert_eq!(retried, StatusCode::OK, "{body}");
    assert_eq!(queued(&ops, "post_note").await.len(), 1);
    let (again, _) = ops
        .post(&format!("/api/dead-letters/{}/retry", ids[0]), json!({}))
        .await;
    assert_eq!(again, StatusCode::NOT_FOUND, "a redriven letter is gone");

    // Delete one.
    let (deleted, _) = ops.delete(&format!("/api/dead-letters/{}", ids[1])).await;
    assert_eq!(deleted, StatusCode::OK);
    let (deleted_again, _) = ops.delete(&format!("/api/dead-letters/{}", ids[1])).await;
    assert_eq!(deleted_again, StatusCode::NOT_FOUND);

    // Retry all of the queue: the last one.
    let (all, body) = ops
        .post("/api/dead-letters/retry?queue=post_note", json!({}))
        .await;
    assert_eq!(all, StatusCode::OK, "{body}");
    assert_eq!(body["retried"], 1);
    assert_eq!(queued(&ops, "post_note").await.len(), 2);
    let (_, list) = ops.get("/api/dead-letters").await;
    assert_eq!(list["total"], 0);
}

/// Reads the event stream until a whole message containing `needle` has arrived (or
/// [`PATIENCE`] passes); returns the text read.
async fn read_until(response: &mut reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !(text.contains(needle) && text.ends_with("\n\n")) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} within {PATIENCE:?}; got {text:?}"))
            .expect("the stream reads")
            .unwrap_or_else(|| panic!("the stream ended before {needle:?}; got {text:?}"));
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

#[tokio::test]
async fn decisions_and_new_drafts_are_streamed_as_server_sent_events() {
    // Arrange
    let ops = Ops::start("ops-sse").await;
    let doc = draft(21, Priority::Normal, 1_000);
    ops.create(&doc).await;
    let mut events = ops
        .request(reqwest::Method::GET, "/api/events")
        .send()
        .await
        .expect("the event stream opens");
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(
        events
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    read_until(&mut events, ": connected").await;

    // Act
    let (status, _) = ops
        .post(
            &format!("/api/approvals/{}/approve", doc.id),
            json!({ "operator": "dana" }),
        )
        .await;
    let decision = read_until(&mut events, "event: decision").await;
    let mut conn = ops.queue.connection();
    publish_event(
        &mut conn,
        ops.keys(),
        EventKind::Draft,
        &json!({ "approval_id": "1-22-220", "priority": "urgent" }),
    )
    .await
    .expect("published");
    let draft_event = read_until(&mut events, "1-22-220").await;

    // Assert
    assert_eq!(status, StatusCode::OK);
    assert!(decision.contains("event: decision\n"), "{decision}");
    let data = decision
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("a data line");
    let data: Value = serde_json::from_str(data).expect("data is JSON");
    assert_eq!(data["approval_id"], doc.id.as_str());
    assert_eq!(data["decision"], "approve");
    assert_eq!(data["operator"], "dana");
    assert!(draft_event.contains("event: draft\n"), "{draft_event}");
}

#[tokio::test]
async fn a_reconnecting_client_resumes_after_its_last_event_id() {
    // Arrange: two events published while no client listens.
    let ops = Ops::start("ops-sse-resume").await;
    let mut conn = ops.queue.connection();
    let first = publish_event(
        &mut conn,
        ops.keys(),
        EventKind::Draft,
        &json!({ "n": "first" }),
    )
    .await
    .expect("published");
    publish_event(
        &mut conn,
        ops.keys(),
        EventKind::Draft,
        &json!({ "n": "second" }),
    )
    .await
    .expect("published");

    // Act
    let mut events = ops
        .request(reqwest::Method::GET, "/api/events")
        .header("Last-Event-ID", &first)
        .send()
        .await
        .expect("the event stream opens");
    let text = read_until(&mut events, "second").await;

    // Assert
    assert!(!text.contains("first"), "{text}");
    assert!(text.contains("event: draft\n"), "{text}");
}

#[tokio::test]
async fn shutdown_ends_open_event_streams_and_drains() {
    // Arrange
    let ops = Ops::start("ops-sse-stop").await;
    let mut events = ops
        .request(reqwest::Method::GET, "/api/events")
        .send()
        .await
        .expect("the event stream opens");
    read_until(&mut events, ": connected").await;

    // Act
    let Ops { app, _bed: bed, .. } = ops;
    let stopped = tokio::spawn(app.stop());
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    })
    .await
    .expect("the stream ends within the patience");
    let outcome = tokio::time::timeout(PATIENCE, stopped)
        .await
        .expect("the ingress stops")
        .expect("the ingress task does not panic");

    // Assert
    assert!(end, "the stream ends cleanly, not with a broken connection");
    assert_eq!(outcome, ShutdownOutcome::Drained);
    drop(bed);
}
