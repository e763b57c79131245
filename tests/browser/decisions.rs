//! Approve (twice, and from a second tab), edit with its diff, reject with a reply,
//! escalate; an expired session returns to the page after sign-in.

use std::time::Duration;

use copydesk::learning;
use fantoccini::Locator;

use crate::harness::{submit_token, Browser, Site, MARIA, SERIAL, TOM};

#[tokio::test]
async fn approving_twice_and_from_a_second_tab_sends_one_reply_and_names_the_agent() {
    let _serial = SERIAL.lock().await;
    let site = Site::start(Vec::new()).await;
    let browser = Browser::start(1280, 1000).await;
    let id = site.draft_of(101).await;
    let draft_path = format!("/ui/approvals/{id}");
    site.sign_in(&browser, &draft_path, MARIA).await;
    let customer = browser.text_of("#customer-message").await;
    assert!(!customer.is_empty());
    browser.screenshot("draft").await;

    // A second tab on the same draft.
    let first_tab = browser.client.window().await.expect("window");
    let second = browser.client.new_window(true).await.expect("a tab");
    browser
        .client
        .switch_to_window(second.handle.clone())
        .await
        .expect("switch");
    browser
        .client
        .goto(&site.url(&draft_path))
        .await
        .expect("navigates");
    browser.wait_for("#approve").await;
    browser
        .client
        .switch_to_window(first_tab)
        .await
        .expect("switch back");

    // Approve, clicked twice.
    let approve = browser.wait_for("#approve").await;
    approve.click().await.expect("click");
    let _ = approve.click().await; // the page may already be leaving
    browser.wait_for(".flash").await;
    let replies = site.wait_replies(101, 1).await;
    let item = site
        .pipeline
        .approvals
        .get(&id)
        .await
        .expect("redis")
        .expect("item");
    assert_eq!(replies, vec![item.doc.draft.clone()]);

    // The second tab approves the same draft: told in words, nothing more is sent.
    browser
        .client
        .switch_to_window(second.handle)
        .await
        .expect("switch");
    browser
        .wait_for("#approve")
        .await
        .click()
        .await
        .expect("click");
    let notice = browser.text_of("#notice").await;
    assert!(
        notice.contains("already approved by Maria Lopez"),
        "{notice}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        site.pipeline.chatwoot.public_replies(101).len(),
        1,
        "still one reply"
    );

    // The learning record names the agent with their Chatwoot id.
    let mut conn = site.pipeline.queue.connection();
    let records = learning::read_since(&mut conn, site.pipeline.queue.keys(), 0)
        .await
        .expect("learning records");
    let record = records
        .iter()
        .find(|r| r.approval_id == id)
        .expect("a record");
    assert_eq!(record.operator, "Maria Lopez (Chatwoot agent 2)");
    assert_eq!(record.decision, "approve");
    browser.close().await;
}

#[tokio::test]
async fn edit_shows_the_diff_then_sends_once_reject_replies_and_escalate_assigns_and_notes() {
    let _serial = SERIAL.lock().await;
    let site = Site::start(Vec::new()).await;
    let browser = Browser::start(1280, 1000).await;

    // Edit 102: the word diff first, then the edited text is sent once.
    let id = site.draft_of(102).await;
    site.sign_in(&browser, &format!("/ui/approvals/{id}"), TOM)
        .await;
    let content = browser.wait_for("#content").await;
    content.clear().await.expect("clear");
    let edited = "Thanks for writing. Please send us a photo of the leaking AN fittings and we will replace them.";
    content.send_keys(edited).await.expect("types");
    browser
        .wait_for("#edit")
        .await
        .click()
        .await
        .expect("click");
    let diff = browser.wait_for("#diff").await;
    let ins = diff.find_all(Locator::Css("ins")).await.expect("ins");
    assert!(!ins.is_empty(), "added words are marked");
    browser.screenshot("edit-diff").await;
    browser
        .wait_for("#send-edited")
        .await
        .click()
        .await
        .expect("send");
    browser.wait_for(".flash").await;
    assert_eq!(site.wait_replies(102, 1).await, vec![edited.to_owned()]);

    // Reject 103 with the operator's own reply.
    let id = site.draft_of(103).await;
    browser
        .client
        .goto(&site.url(&format!("/ui/approvals/{id}")))
        .await
        .expect("navigates");
    browser
        .wait_for("#reject-box summary")
        .await
        .click()
        .await
        .expect("open");
    browser
        .wait_for("#reason")
        .await
        .send_keys("wrong part number")
        .await
        .expect("types");
    let own = "Our fuel system specialist will call you today about the 1500 HP setup.";
    browser
        .wait_for("#reply")
        .await
        .send_keys(own)
        .await
        .expect("types");
    browser
        .wait_for("#reject")
        .await
        .click()
        .await
        .expect("click");
    browser.wait_for(".flash").await;
    assert_eq!(site.wait_replies(103, 1).await, vec![own.to_owned()]);

    // Escalate a new draft of 101 to Managers: assigned, and the note is posted.
    let (message, _) = site
        .pipeline
        .customer_writes(101, "Which AN-8 hose end fits a 3/8 inch line?")
        .await;
    let id = site.pipeline.approval_id(101, message);
    site.pipeline
        .wait_for(&id, Duration::from_secs(30), |_| true)
        .await
        .expect("drafted");
    browser
        .client
        .goto(&site.url(&format!("/ui/approvals/{id}")))
        .await
        .expect("navigates");
    browser
        .wait_for("#escalate-box summary")
        .await
        .click()
        .await
        .expect("open");
    browser
        .wait_for("#team")
        .await
        .select_by_value("Managers")
        .await
        .expect("select");
    browser
        .wait_for("#note")
        .await
        .send_keys("Customer asks for a manager.")
        .await
        .expect("types");
    browser
        .wait_for("#escalate")
        .await
        .click()
        .await
        .expect("click");
    browser.wait_for(".flash").await;
    let until = std::time::Instant::now() + crate::harness::PATIENCE;
    loop {
        let noted = site.pipeline.chatwoot.private_notes(101).iter().any(|n| {
            let text = n.content.as_deref().unwrap_or("");
            text.contains("Customer asks for a manager.") && text.contains("Tom Becker")
        });
        let team = site
            .pipeline
            .chatwoot
            .conversation(101)
            .and_then(|c| c.team_id);
        if noted && team == Some(MANAGERS_TEAM) {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "escalation not applied: team {team:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An expired session: sign-in, then back to the page the operator was on.
    let mut conn = site.pipeline.queue.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(site.pipeline.queue.keys().console_session("*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .expect("del");
    let path = "/ui/queues";
    browser
        .client
        .goto(&site.url(path))
        .await
        .expect("navigates");
    submit_token(
        &browser,
        &copydesk_testkit::fake_chatwoot::agent_token(MARIA),
    )
    .await;
    browser
        .wait_source("the queues page", |s| s.contains("<h1>Queues</h1>"))
        .await;
    assert_eq!(
        browser.client.current_url().await.expect("url").path(),
        path
    );
    browser.close().await;
}

/// The demo seed's Managers team (tests/fixtures/routing.demo.toml).
const MANAGERS_TEAM: i64 = 3;
