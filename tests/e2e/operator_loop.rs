//! The operator loop on the whole fleet: decisions through the ops API (HTTP, bearer token)
//! and through the `copydesk approvals` CLI (a real process) reach Chatwoot exactly as
//! decided; escalations land with the team; learning records can be exported.

use std::process::{Command, Output};
use std::time::Duration;

use copydesk::approvals::{ApprovalItem, ApprovalStatus};
use copydesk::jobs::{Job, PostNote};
use copydesk::queue::{DeadLetterFilter, DeadLetters};
use copydesk_testkit::fake_chatwoot::{Endpoint, Fault};
use copydesk_testkit::ingress_app::TEST_OPS_TOKEN;
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

async fn pipeline() -> Pipeline {
    Pipeline::start(PipelineOptions {
        ops: true,
        ..PipelineOptions::default()
    })
    .await
    .expect("pipeline starts")
}

async fn drafted(p: &Pipeline, conversation: i64) -> ApprovalItem {
    let message = p.chatwoot.incoming_messages(conversation)[0].clone();
    assert_eq!(
        p.deliver_message_webhook(conversation, message.id).await,
        202
    );
    let id = p.approval_id(conversation, message.id);
    p.wait_for_note(&id, WAIT).await.expect("draft with note")
}

async fn post(p: &Pipeline, path: &str, body: Value) -> (u16, Value) {
    let response = p
        .ingress
        .http
        .post(p.ingress.ops_url(path))
        .bearer_auth(TEST_OPS_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("the ops API answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// Runs the `copydesk` CLI (built in this package as `copydesk-fleet`) against the fleet.
fn cli(p: &Pipeline, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_copydesk-fleet"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("REDIS_URL", &p.env["REDIS_URL"])
        .env("COPYDESK_KEY_PREFIX", &p.env["COPYDESK_KEY_PREFIX"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("the CLI runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn settled(p: &Pipeline, id: &str, status: ApprovalStatus) -> ApprovalItem {
    p.wait_for(id, WAIT, |i| i.status == status)
        .await
        .unwrap_or_else(|| panic!("{id} reaches {status:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_through_the_api_sends_one_public_reply_and_a_second_decision_is_409() {
    let p = pipeline().await;
    let item = drafted(&p, 101).await;
    let path = format!("/api/approvals/{}/approve", item.doc.id);
    let (status, body) = post(&p, &path, json!({"operator": "ana"})).await;
    assert_eq!(status, 200, "{body}");
    let sent = settled(&p, &item.doc.id, ApprovalStatus::Sent).await;
    let replies = p.chatwoot.public_replies(101);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].content.as_deref(), Some(item.doc.draft.as_str()));
    assert_eq!(sent.reply_message_id, Some(replies[0].id));

    let (status, body) = post(&p, &path, json!({"operator": "ben"})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["status"], "sent");
    assert_eq!(p.chatwoot.public_replies(101).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn escalate_through_the_api_assigns_the_team_and_posts_the_operators_note() {
    let p = pipeline().await;
    let item = drafted(&p, 101).await;
    let (status, body) = post(
        &p,
        &format!("/api/approvals/{}/escalate", item.doc.id),
        json!({"operator": "ana", "team": "Managers", "note": "Customer asked for a refund too"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let notes = p.chatwoot.private_notes(101);
        let escalation = notes.iter().find(|n| {
            n.content
                .as_deref()
                .is_some_and(|c| c.contains("Customer asked for a refund too"))
        });
        let conversation = p.chatwoot.conversation(101).expect("conversation");
        if escalation.is_some() && conversation.team_id == Some(3) {
            assert_eq!(
                conversation.assignee_id,
                Some(5),
                "the Managers team's online agent"
            );
            assert!(
                p.chatwoot.public_replies(101).is_empty(),
                "nothing sent to the customer"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "escalation applied: {notes:?} {conversation:?} {:?}",
            DeadLetters::new(&p.queue)
                .list(&DeadLetterFilter::default())
                .await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_lists_and_decides_like_the_api() {
    let p = pipeline().await;
    let an6 = drafted(&p, 101).await;
    let leak = drafted(&p, 102).await;

    let listed = cli(&p, &["approvals", "list"]);
    assert!(listed.status.success(), "{listed:?}");
    let text = stdout(&listed);
    let first = text.lines().next().expect("a line");
    assert!(first.starts_with(&leak.doc.id), "urgent first:\n{text}");
    assert!(text.contains(&an6.doc.id));

    let edited = "AN-6 means 6/16 inch, which is 3/8 inch.";
    let out = cli(
        &p,
        &[
            "approvals",
            "edit",
            &an6.doc.id,
            "--operator",
            "cli-ops",
            "--content",
            edited,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    settled(&p, &an6.doc.id, ApprovalStatus::Sent).await;
    let replies = p.chatwoot.public_replies(101);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].content.as_deref(), Some(edited));

    let again = cli(
        &p,
        &["approvals", "approve", &an6.doc.id, "--operator", "cli-ops"],
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no longer pending"),
        "{again:?}"
    );

    // The customer answers: the learning record learns it.
    let (next, status) = p.customer_writes(101, "Thanks, that fits!").await;
    assert_eq!(status, 202);
    p.wait_for_note(&p.approval_id(101, next), WAIT)
        .await
        .expect("the next message is drafted");

    let export = cli(&p, &["learning", "export", "--since", "1h"]);
    assert!(export.status.success(), "{export:?}");
    let records: Vec<Value> = stdout(&export)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["approval_id"], an6.doc.id.as_str());
    assert_eq!(records[0]["decision"], "edit");
    assert_eq!(records[0]["final_text"], edited);
    assert_eq!(records[0]["operator"], "cli-ops");
    assert_eq!(records[0]["was_sent"], true);
    assert_eq!(records[0]["customer_replied"], true);
    assert!(records[0]["edit_distance"].as_u64().is_some_and(|d| d > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_shows_queues_and_replays_and_purges_dead_letters() {
    let p = Pipeline::start(PipelineOptions {
        env: [("COPYDESK_MAX_ATTEMPTS_POST_NOTE".to_owned(), "1".to_owned())].into(),
        roles: copydesk_testkit::pipeline::webhook_roles()
            .into_iter()
            .filter(|r| *r != copydesk_workers::runtime::Role::DEADLETTER)
            .collect(),
        ..PipelineOptions::default()
    })
    .await
    .expect("pipeline");
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 2, Fault::Status(500));
    for conversation in [101, 102] {
        let message = p.chatwoot.incoming_messages(conversation)[0].clone();
        assert_eq!(
            p.deliver_message_webhook(conversation, message.id).await,
            202
        );
    }
    let letters = DeadLetters::new(&p.queue);
    let deadline = std::time::Instant::now() + WAIT;
    while letters.count_for(PostNote::QUEUE).await.expect("count") < 2 {
        assert!(std::time::Instant::now() < deadline, "two dead letters");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queues = cli(&p, &["queues", "--json"]);
    assert!(queues.status.success(), "{queues:?}");
    let depth: Value = serde_json::from_str(&stdout(&queues)).expect("JSON");
    assert_eq!(depth["post_note"]["dead"], 2);

    let listed = cli(&p, &["dead-letters", "list", "--queue", "post_note"]);
    assert!(listed.status.success());
    let all = letters
        .list(&DeadLetterFilter::default())
        .await
        .expect("list");
    for letter in &all {
        assert!(
            stdout(&listed).contains(&letter.id),
            "{letter:?} not in:\n{}\n{}",
            stdout(&listed),
            String::from_utf8_lossy(&listed.stderr)
        );
    }
    let (replay, purge) = (&all[0], &all[1]);
    let out = cli(&p, &["dead-letters", "retry", &replay.id]);
    assert!(out.status.success(), "{out:?}");
    let job: PostNote = serde_json::from_str(&replay.payload).expect("payload");
    assert!(p
        .wait_for_note(job.approval_id.as_str(), WAIT)
        .await
        .is_some());

    let out = cli(&p, &["dead-letters", "purge", &purge.id]);
    assert!(out.status.success(), "{out:?}");
    assert!(letters.get(&purge.id).await.expect("get").is_none());
    assert_eq!(letters.count_for(PostNote::QUEUE).await.expect("count"), 0);
    let missing = cli(&p, &["dead-letters", "show", &purge.id]);
    assert!(!missing.status.success());
    assert_eq!(PostNote::QUEUE, "post_note");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approving_a_draft_the_customer_has_moved_past_is_409_superseded() {
    let p = pipeline().await;
    let item = drafted(&p, 101).await;
    let (newer, status) = p
        .customer_writes(101, "Actually, do you also sell AN-8 hose ends?")
        .await;
    assert_eq!(status, 202);
    p.wait_for_note(&p.approval_id(101, newer), WAIT)
        .await
        .expect("the newer message is drafted");

    let (status, body) = post(
        &p,
        &format!("/api/approvals/{}/approve", item.doc.id),
        json!({"operator": "ana"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["status"], "superseded");
    assert!(p.chatwoot.public_replies(101).is_empty());
}
