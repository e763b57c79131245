//! Observability end to end (issue 11): a real Prometheus (Debian's `prometheus`) scrapes the
//! fleet running as separate processes with deploy/prometheus's scrape job and rules. The seed's
//! three customer messages plus one whose note Chatwoot refuses until it is dead-lettered go
//! through; operators approve one draft and edit another through the ops API; the lifecycle sees
//! the replies, a resolution and an SLA breach; the reconciler, started once the webhooks are
//! in, recovers a message whose webhook was lost. Then, through Prometheus's HTTP API: every
//! target is up, every live `/metrics` passes `promtool check metrics`, the pipeline, approval,
//! queue and SLA series have the expected values, every panel query of
//! deploy/grafana/copydesk.json returns data, `CopydeskWebhooksLost` fires, and killing the
//! drafter makes `CopydeskWorkerRoleMissing{role="drafter"}` pending or firing.

mod dashboard;
mod harness;
mod traces;

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

use copydesk::approvals::ApprovalStatus;
use copydesk::chatwoot::ConversationStatus;
use copydesk::queue::{DeadLetterFilter, DeadLetters};
use copydesk_testkit::fake_chatwoot::seed::DEMO_WEB_INBOX;
use copydesk_testkit::fake_chatwoot::{Endpoint, FakeConversation, Fault};
use copydesk_testkit::ingress_app::{TEST_OPS_TOKEN, TEST_SECRET};
use copydesk_testkit::redis_server::free_port;
use copydesk_testkit::webhook::{agent_reply, fixture, unix_now, WebhookSender};
use serde_json::{json, Value};

use harness::{scalar, start_ingress, start_prometheus, start_role, start_role_on, Proc};

const WAIT: Duration = Duration::from_secs(90);
const ROLES: [&str; 6] = [
    "knowledge",
    "drafter",
    "notes",
    "assigner",
    "lifecycle",
    "deadletter",
];
/// The conversation whose note Chatwoot refuses (the failing job).
const FAILING_CONVERSATION: i64 = 104;
/// The conversation whose message's webhook is lost (the reconciler recovers it).
const LOST_CONVERSATION: i64 = 105;

fn approx(value: Option<f64>, expected: f64) -> bool {
    value.is_some_and(|v| (v - expected).abs() < 1e-9)
}

async fn decide(http: &reqwest::Client, ops_url: &str, id: &str, action: &str, body: Value) {
    let response = http
        .post(format!("{ops_url}/api/approvals/{id}/{action}"))
        .bearer_auth(TEST_OPS_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("ops API answers");
    assert!(
        response.status().is_success(),
        "{action} {id}: {}",
        response.status()
    );
}

/// `promtool check metrics` on one process's live `/metrics`: its complaints, empty when none.
async fn promtool_check_metrics(http: &reqwest::Client, proc: &Proc) -> String {
    let text = http
        .get(proc.metrics_url())
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    assert!(text.contains("# HELP"), "{} serves metrics", proc.role);
    let path = std::env::temp_dir().join(format!("copydesk-metrics-{}.txt", ulid::Ulid::new()));
    std::fs::write(&path, &text).expect("metrics written");
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < '{}'", path.display()))
        .output()
        .expect("promtool runs (bash scripts/ensure-prometheus.sh installs it)");
    let _ = std::fs::remove_file(&path);
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        String::new()
    } else {
        format!("{}: {}", proc.role, complaints.trim())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_scrapes_the_fleet_and_its_alerts_and_dashboard_work() {
    let http = reqwest::Client::new();
    let (p, spool) = harness::world().await;
    let mut env = p.env.clone();
    env.insert("COPYDESK_MAX_ATTEMPTS_POST_NOTE".into(), "2".into());
    env.insert("COPYDESK_SWEEP_INTERVAL_MS".into(), "500".into());
    env.insert("COPYDESK_VISIBILITY_TIMEOUT_MS".into(), "5000".into());
    let ingress = start_ingress(&env, &spool);
    let mut workers: HashMap<&str, Proc> =
        ROLES.iter().map(|r| (*r, start_role(r, &env))).collect();
    let mut targets = vec![("ingress", ingress.proc.metrics_port)];
    targets.extend(ROLES.iter().map(|r| (*r, workers[r].metrics_port)));
    for (_, port) in &targets {
        let url = format!("http://127.0.0.1:{port}/metrics");
        harness::wait_http_ok(&http, &url, WAIT).await;
    }
    // The reconciler starts once the webhooks are in (else it would recover them first); its
    // target is scraped from the start and down until then.
    let reconciler_port = free_port();
    targets.push(("reconciler", reconciler_port));
    let rules_dir = harness::deploy_dir().join("prometheus").join("rules");
    let rules = vec![
        rules_dir.join("recording.yaml"),
        rules_dir.join("alerts.yaml"),
    ];
    let prometheus = start_prometheus(&http, &harness::prometheus_config(&targets, &rules)).await;
    // Every target up, with its role, before any traffic: counters are first scraped at 0.
    let up = prometheus
        .eventually(&http, r#"up{role!="reconciler"} == 1"#, WAIT, |r| {
            r.len() == targets.len() - 1
        })
        .await;
    let roles: BTreeSet<&str> = up
        .iter()
        .filter_map(|s| s["metric"]["role"].as_str())
        .collect();
    assert_eq!(roles.len(), targets.len() - 1, "{roles:?}");

    let sender = WebhookSender::new(http.clone(), ingress.webhook_url.clone(), TEST_SECRET);

    // The seed's three customer messages; conversation 103's customer wrote two hours ago, so
    // the lifecycle sweep counts a first-response breach for it.
    let mut ids = Vec::new();
    for conversation in [101, 102, 103] {
        let message = p.chatwoot.incoming_messages(conversation)[0].clone();
        let mut payload = p
            .chatwoot
            .message_created_webhook(conversation, message.id)
            .expect("seed message");
        if conversation == 103 {
            backdate(&mut payload, unix_now() - 7200);
        }
        let status = sender
            .post(&payload)
            .await
            .expect("ingress answers")
            .status();
        assert_eq!(status, 202, "conversation {conversation}");
        ids.push(p.approval_id(conversation, message.id));
    }
    for id in &ids {
        assert!(p.wait_for_note(id, WAIT).await.is_some(), "note of {id}");
    }

    // Operators: approve 101's draft, edit 102's; both replies are sent.
    decide(
        &http,
        &ingress.ops_url,
        &ids[0],
        "approve",
        json!({"operator": "ana"}),
    )
    .await;
    let edited = json!({"operator": "ben", "content": "AN-8 hose fits AN-8 fittings."});
    decide(&http, &ingress.ops_url, &ids[1], "edit", edited).await;
    for id in &ids[..2] {
        let sent = p
            .wait_for(id, WAIT, |i| i.status == ApprovalStatus::Sent)
            .await;
        assert!(sent.is_some(), "reply of {id} sent");
    }
    // Chatwoot's webhooks for the two replies (first responses), then 101 is resolved; both
    // happen now, after the customer wrote (the fixtures' own timestamps are older).
    for conversation in [101, 102] {
        let reply = p.chatwoot.public_replies(conversation)[0].clone();
        let mut payload = agent_reply(reply.id, conversation, "reply");
        payload["created_at"] = json!(unix_now());
        assert_eq!(sender.post(&payload).await.expect("ingress").status(), 202);
    }
    assert!(p.chatwoot.set_status(101, ConversationStatus::Resolved));
    let mut resolved = fixture("conversation_status_changed.json");
    resolved["id"] = json!(101);
    resolved["status"] = json!("resolved");
    resolved["updated_at"] = json!(unix_now() as f64 + 0.5);
    assert!(sender
        .post(&resolved)
        .await
        .expect("ingress")
        .status()
        .is_success());

    // The failing job: Chatwoot refuses the note of a fourth message until it is dead-lettered.
    p.chatwoot.add_conversation(FakeConversation::new(
        FAILING_CONVERSATION,
        DEMO_WEB_INBOX,
        11,
    ));
    let message = p
        .chatwoot
        .add_incoming_message(FAILING_CONVERSATION, "Do you ship to Canada?")
        .expect("conversation added");
    p.chatwoot
        .fail_next_on(Endpoint::CreateMessage, 2, Fault::Status(500));
    let payload = p
        .chatwoot
        .message_created_webhook(FAILING_CONVERSATION, message.id)
        .expect("stored message");
    assert_eq!(sender.post(&payload).await.expect("ingress").status(), 202);
    let letters = DeadLetters::new(&p.queue);
    let until = std::time::Instant::now() + WAIT;
    while letters
        .list(&DeadLetterFilter::default())
        .await
        .expect("dead letters")
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < until,
            "the note job is dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A lost webhook: the reconciler starts, Prometheus scrapes its counters at 0, then a
    // customer writes in a new conversation and Chatwoot's webhook never arrives.
    let mut reconciler_env = env.clone();
    reconciler_env.insert("COPYDESK_RECONCILE_INTERVAL_MS".into(), "1000".into());
    let reconciler = start_role_on("reconciler", &reconciler_env, reconciler_port);
    prometheus
        .eventually(
            &http,
            r#"copydesk_reconcile_recovered_total{kind="customer_message"}"#,
            WAIT,
            |r| approx(scalar(r), 0.0),
        )
        .await;
    let lost_id = harness::lose_a_webhook(&p, LOST_CONVERSATION, "Is the AN-10 kit back in stock?");
    assert!(
        p.wait_for_note(&lost_id, WAIT).await.is_some(),
        "the reconciler recovers {lost_id} and it gets its note"
    );

    // Every live /metrics passes promtool's linter.
    let mut complaints = vec![promtool_check_metrics(&http, &ingress.proc).await];
    for role in ROLES {
        complaints.push(promtool_check_metrics(&http, &workers[role]).await);
    }
    complaints.push(promtool_check_metrics(&http, &reconciler).await);
    complaints.retain(|c| !c.is_empty());
    assert!(
        complaints.is_empty(),
        "promtool check metrics: {complaints:#?}"
    );

    // Expected values, once the last scrape has them.
    let checks: [(&str, f64); 11] = [
        ("sum(copydesk_pipeline_latency_seconds_count)", 4.0),
        ("sum(copydesk_drafts_total)", 5.0),
        (r#"sum(copydesk_approvals_total{decision="approve"})"#, 1.0),
        (r#"sum(copydesk_approvals_total{decision="edit"})"#, 1.0),
        (r#"sum(copydesk_replies_total{outcome="sent"})"#, 2.0),
        (
            r#"sum(copydesk_jobs_total{queue="post_note",outcome="dead"})"#,
            1.0,
        ),
        (
            r#"max(copydesk_queue_depth{queue="post_note",state="dead"})"#,
            1.0,
        ),
        (
            r#"sum(copydesk_chatwoot_requests_total{status="500"})"#,
            2.0,
        ),
        // 103 and 105 wait for an operator; 104's draft too (its note failed).
        ("sum(max by (priority) (copydesk_approvals_pending))", 3.0),
        (r#"count(copydesk_worker_up == 1)"#, 7.0),
        (
            r#"sum(copydesk_reconcile_recovered_total{kind="customer_message"})"#,
            1.0,
        ),
    ];
    for (query, expected) in checks {
        let result = prometheus
            .eventually(&http, query, WAIT, |r| approx(scalar(r), expected))
            .await;
        println!("{query} = {:?}", scalar(&result));
    }
    let series = [
        "copydesk:pipeline_latency_seconds:p90_rate5m",
        "copydesk:approval_rate:ratio_rate1h",
        "copydesk:edit_rate:ratio_rate1h",
        r#"queue:copydesk_jobs_failed:ratio_rate5m{queue="post_note"}"#,
        "queue:copydesk_queue_oldest_age_seconds:max",
        r#"copydesk_sla_breaches_total{kind="first_response"}"#,
        "copydesk_queue_claim_latency_seconds_count",
        "copydesk_decision_seconds_count",
        "copydesk_edit_distance_characters_count",
        "copydesk_redis_memory_used_bytes",
    ];
    for query in series {
        let result = prometheus
            .eventually(&http, query, WAIT, |r| !r.is_empty())
            .await;
        println!("{query}: {} series", result.len());
    }
    // The first dead letter and the first breach of fresh processes are increases Prometheus
    // sees (their counters were published at 0), so the alerts on them can fire.
    for (query, label, value) in [
        (
            r#"sum by (queue) (increase(copydesk_jobs_total{outcome="dead"}[30m])) > 0"#,
            "queue",
            "post_note",
        ),
        (
            r#"sum by (kind) (increase(copydesk_sla_breaches_total[30m])) > 0"#,
            "kind",
            "first_response",
        ),
    ] {
        prometheus
            .eventually(&http, query, WAIT, |r| {
                r.iter().any(|s| s["metric"][label] == value)
            })
            .await;
    }
    let rate = prometheus
        .eventually(&http, "copydesk:approval_rate:ratio_rate1h", WAIT, |r| {
            scalar(r).is_some_and(|v| v > 0.0 && v < 1.0)
        })
        .await;
    println!("approval rate {:?} (1 approve, 1 edit)", scalar(&rate));

    // The recovery is an increase Prometheus sees (the counter was scraped at 0 first).
    let lost_alert = prometheus
        .eventually(
            &http,
            r#"ALERTS{alertname="CopydeskWebhooksLost", alertstate="firing"}"#,
            WAIT,
            |r| !r.is_empty(),
        )
        .await;
    println!("after the lost webhook: {lost_alert:?}");

    // Every panel query of the dashboard parses and returns data.
    dashboard::every_panel_returns_data(&http, &prometheus).await;

    // A missing role: kill the drafter; its alert goes pending (then firing after `for`).
    let mut drafter = workers.remove("drafter").expect("drafter runs");
    drafter.kill();
    let alert = prometheus
        .eventually(
            &http,
            r#"ALERTS{alertname="CopydeskWorkerRoleMissing", role="drafter"}"#,
            WAIT,
            |r| {
                r.iter().any(|s| {
                    matches!(
                        s["metric"]["alertstate"].as_str(),
                        Some("pending" | "firing")
                    )
                })
            },
        )
        .await;
    println!("after killing the drafter: {alert:?}");
    let others = prometheus
        .query(
            &http,
            r#"ALERTS{alertname="CopydeskWorkerRoleMissing", role!="drafter"}"#,
        )
        .await;
    assert!(others.is_empty(), "only the drafter is missing: {others:?}");
    drop(workers);
    drop(reconciler);
    let _ = std::fs::remove_dir_all(&spool);
}

/// Moves a customer message webhook's timestamps to `unix` seconds.
fn backdate(payload: &mut Value, unix: i64) {
    if let Some(messages) = payload["conversation"]["messages"].as_array_mut() {
        for m in messages {
            m["created_at"] = json!(unix);
        }
    }
    // Chatwoot's Timestamp accepts integer Unix seconds as well as ISO-8601 text.
    payload["created_at"] = json!(unix);
}
