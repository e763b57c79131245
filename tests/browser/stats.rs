//! The team on the queue (shown and filtered), the draft page's evidence (conversation lines,
//! passages, confidence inputs), the spool and the reconciliation sweep on the queues page, and
//! the stats page after a known mix of decisions: counts, rates, medians and SVG charts.

use std::time::Instant;

use copydesk::approvals::Priority;
use copydesk::reconcile::{AccountPass, MissedMessage, PassReport, ReconcileStore};
use copydesk::stats::{self, DecisionKind, LifecycleSample, SampleKind};
use copydesk_testkit::ingress_app::TEST_OPS_TOKEN;
use fantoccini::Locator;
use serde_json::json;

use crate::harness::{Browser, Site, MARIA, PATIENCE, SERIAL};

/// Waits until routing has recorded a team on each of `ids`; returns them in order.
async fn recorded_teams(site: &Site, ids: &[String]) -> Vec<String> {
    let until = Instant::now() + PATIENCE;
    loop {
        let mut conn = site.pipeline.queue.connection();
        let teams = copydesk::approval_facts::teams(&mut conn, site.pipeline.queue.keys(), ids)
            .await
            .expect("redis");
        if teams.iter().all(Option::is_some) {
            return teams.into_iter().flatten().collect();
        }
        assert!(
            Instant::now() < until,
            "routing recorded no team for some of {ids:?}: {teams:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `POST /api/approvals/{id}/{action}` on the ops API.
async fn decide(site: &Site, id: &str, action: &str, body: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/approvals/{id}/{action}", site.ops))
        .bearer_auth(TEST_OPS_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("the ops API answers");
    assert_eq!(response.status(), 200, "{action} {id} applied");
}

/// The text of `[data-stat=name]` in the window section `window` (`24h` or `7d`).
async fn stat(browser: &Browser, window: &str, name: &str) -> String {
    browser
        .text_of(&format!("#window-{window} [data-stat=\"{name}\"]"))
        .await
}

#[tokio::test]
async fn the_queue_shows_teams_the_draft_its_evidence_and_stats_count_a_known_mix() {
    let _serial = SERIAL.lock().await;
    let site = Site::start(Vec::new()).await;
    let browser = Browser::start(1280, 1400).await;
    let ids = site.pending_ids().await;
    let teams = recorded_teams(&site, &ids).await;

    // The queue: each row shows its recorded team; the team filter keeps only that team's.
    site.sign_in(&browser, "/ui/", MARIA).await;
    browser.wait_for("#queue-rows tr").await;
    for (id, team) in ids.iter().zip(&teams) {
        let shown = browser.text_of(&format!("#row-{id} td.team")).await;
        assert_eq!(&shown, team, "row {id}");
    }
    let wanted = &teams[0];
    browser
        .client
        .goto(&site.url(&format!(
            "/ui/?team={}",
            wanted.replace(' ', "+").replace('&', "%26")
        )))
        .await
        .expect("navigates");
    browser.wait_for("#queue-rows").await;
    let mut filtered = Vec::new();
    for row in browser
        .client
        .find_all(Locator::Css("#queue-rows tr"))
        .await
        .expect("rows")
    {
        filtered.push(row.attr("data-id").await.expect("attr").expect("data-id"));
    }
    let expected: Vec<String> = ids
        .iter()
        .zip(&teams)
        .filter(|(_, t)| *t == wanted)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(filtered, expected, "only drafts routed to {wanted}");
    browser
        .client
        .goto(&site.url("/ui/?team=none"))
        .await
        .expect("navigates");
    browser.wait_for("#queue-empty").await;

    // The draft page: what the drafter saw, passages expandable, what confidence came from.
    let mut with_sources = None;
    for id in &ids {
        let item = site
            .pipeline
            .approvals
            .get(id)
            .await
            .expect("redis")
            .expect("item");
        if !item.doc.sources.is_empty() {
            with_sources = Some(id.clone());
            break;
        }
    }
    let id = with_sources.expect("a seed draft cites sources");
    browser
        .client
        .goto(&site.url(&format!("/ui/approvals/{id}")))
        .await
        .expect("navigates");
    let context = browser.text_of("#context-h").await;
    assert!(context.contains("as the drafter saw it"), "{context}");
    let source = browser.client.source().await.expect("source");
    assert!(
        source.contains("id=\"context\"") || source.contains("id=\"context-empty\""),
        "the conversation lines were recorded"
    );
    assert!(!source.contains("id=\"context-missing\""));
    let passage = browser
        .wait_for("#sources details")
        .await
        .find(Locator::Css("blockquote.passage"))
        .await
        .expect("a passage text in the source");
    let summary = browser.wait_for("#sources details summary").await;
    summary.click().await.expect("expands");
    assert!(!passage.text().await.expect("text").trim().is_empty());
    let why = browser.text_of("#why").await;
    assert!(why.contains("Retrieval relevance"), "{why}");
    assert!(why.contains("Coverage"), "{why}");
    assert!(why.contains("Safety words"), "{why}");

    // The queues page shows the spool's state (this ingress runs without one).
    browser
        .client
        .goto(&site.url("/ui/queues"))
        .await
        .expect("navigates");
    let spool = browser.text_of("#spool").await;
    assert!(spool.contains("No spool"), "{spool}");

    // And the sweep's last pass and a missed message, escaped and linked to Chatwoot.
    let store = ReconcileStore::for_queue(&site.pipeline.queue);
    let now = copydesk::domain::now_ms();
    let pass = PassReport {
        started_at_ms: now - 2_000,
        finished_at_ms: now - 1_000,
        dry_run: false,
        accounts: vec![AccountPass {
            account_id: 1,
            conversations_scanned: 7,
            recovered: [("customer_message".to_owned(), 3)].into(),
            complete: true,
            ..AccountPass::default()
        }],
    };
    store.record_pass(&pass).await.expect("pass recorded");
    let missed = MissedMessage {
        account_id: 1,
        conversation_id: 377,
        message_id: 9_001,
        created_at: now / 1000 - 8 * 3600,
        excerpt: "<b>still waiting</b> for my order".to_owned(),
        answered: false,
        found_at_ms: now,
    };
    store
        .record_missed(&[missed])
        .await
        .expect("missed recorded");
    browser
        .client
        .goto(&site.url("/ui/queues"))
        .await
        .expect("navigates");
    let last = browser.text_of(".last-pass").await;
    assert!(
        last.contains("7 conversation(s) read, 3 lost event(s) recovered")
            && last.contains("customer_message 3"),
        "{last}"
    );
    // In the queue table's style, one row: conversation, age, text, answered.
    let row = browser.text_of("table.queue.missed tbody tr").await;
    assert!(row.contains("1:377") && row.contains("8 h ago"), "{row}");
    let answered = browser
        .text_of("table.queue.missed tbody tr td:last-child")
        .await;
    assert_eq!(answered.trim(), "no");
    assert!(row.contains("<b>still waiting</b>"), "shown as text: {row}");
    let link = browser
        .wait_for("table.queue.missed tbody tr a")
        .await
        .attr("href")
        .await
        .expect("href")
        .unwrap_or_default();
    assert!(
        link.ends_with("/app/accounts/1/conversations/377"),
        "{link}"
    );
    browser.screenshot("console-queues-reconciliation").await;

    // A known mix: approve, edit, reject.
    let items: Vec<_> = {
        let mut out = Vec::new();
        for id in &ids {
            out.push(
                site.pipeline
                    .approvals
                    .get(id)
                    .await
                    .expect("redis")
                    .expect("item"),
            );
        }
        out
    };
    let edited = format!("{} Thanks for asking!", items[1].doc.draft);
    let distance = copydesk::learning::edit_distance(&items[1].doc.draft, &edited);
    decide(&site, &ids[0], "approve", json!({"operator": "stats-test"})).await;
    decide(
        &site,
        &ids[1],
        "edit",
        json!({"operator": "stats-test", "content": edited}),
    )
    .await;
    decide(
        &site,
        &ids[2],
        "reject",
        json!({"operator": "stats-test", "reason": "wrong part"}),
    )
    .await;
    let kinds = [
        DecisionKind::Approve,
        DecisionKind::Edit,
        DecisionKind::Reject,
    ];
    // Lifecycle samples as the lifecycle worker records them (low priority: the seed's
    // drafts have none, so nothing else adds to these).
    let now = copydesk::approvals::now_ms();
    let sample = |kind, seconds| LifecycleSample {
        kind,
        priority: Priority::Low,
        seconds,
        at_ms: now,
    };
    let mut conn = site.pipeline.queue.connection();
    stats::record_lifecycle(
        &mut conn,
        site.pipeline.queue.keys(),
        &[
            sample(SampleKind::FirstResponse, 60.0),
            sample(SampleKind::FirstResponse, 180.0),
            sample(SampleKind::Resolution, 7_200.0),
            sample(SampleKind::FirstResponseBreach, 0.0),
        ],
        now,
    )
    .await
    .expect("samples recorded");

    browser
        .client
        .goto(&site.url("/ui/stats"))
        .await
        .expect("navigates");
    browser.wait_for("#window-24h").await;
    for window in ["24h", "7d"] {
        assert_eq!(stat(&browser, window, "drafts").await, "3");
        assert_eq!(stat(&browser, window, "decisions").await, "3");
        assert_eq!(stat(&browser, window, "approve-rate").await, "33%");
        assert_eq!(stat(&browser, window, "edit-rate").await, "33%");
        assert_eq!(stat(&browser, window, "reject-rate").await, "33%");
        assert_eq!(stat(&browser, window, "escalate-rate").await, "0%");
        assert_eq!(
            stat(&browser, window, "median-edit").await,
            format!("{distance} characters")
        );
        assert_ne!(stat(&browser, window, "median-decision").await, "–");
        assert_eq!(stat(&browser, window, "breaches").await, "1");
        // How often each recommendation was followed, from the drafts' own recommendations.
        let followed = browser.text_of(&format!("#chart-followed-{window}")).await;
        for action in copydesk::stats::ACTIONS {
            let of: Vec<bool> = items
                .iter()
                .zip(kinds)
                .filter(|(item, _)| item.doc.action == action)
                .map(|(_, kind)| kind.follows(action))
                .collect();
            let yes = of.iter().filter(|f| **f).count();
            assert!(
                followed.contains(&format!("({yes} of {})", of.len())),
                "{action:?}: {followed}"
            );
        }
        let frt = browser.text_of(&format!("#chart-frt-{window}")).await;
        assert!(
            frt.contains("2 min (n=2)"),
            "median of 60 s and 180 s: {frt}"
        );
        let ttr = browser.text_of(&format!("#chart-ttr-{window}")).await;
        assert!(ttr.contains("2 h (n=1)"), "{ttr}");
    }
    let charts = browser
        .client
        .find_all(Locator::Css("svg.chart"))
        .await
        .expect("charts");
    assert_eq!(
        charts.len(),
        11,
        "drafts per day, and five charts per window"
    );
    let bars = browser
        .client
        .find_all(Locator::Css("#chart-decisions-24h rect.bar"))
        .await
        .expect("bars");
    assert_eq!(bars.len(), 4, "approve, edit, reject, escalate");
    let nav = browser.text_of("header.top nav").await;
    assert!(nav.contains("Stats"), "{nav}");
    browser.screenshot("stats").await;
    browser.close().await;
}
