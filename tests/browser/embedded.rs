//! The Dashboard App: a parent page on another origin frames `/ui/conversation` and answers
//! its `chatwoot-dashboard-app:fetch-info` with Chatwoot's `appContext` JSON string.

use std::time::Duration;

use crate::harness::{other_site, submit_token, Browser, Site, MARIA, SERIAL};

/// The parent ("Chatwoot"): frames the console at 380 px and answers fetch-info with the
/// context of conversation 102, as Chatwoot does (a JSON string, target origin `*`).
fn parent_page(console: &str, account: i64, evil: &str) -> String {
    format!(
        r#"<!doctype html><html><body style="margin:0">
<iframe id="app" src="{console}/ui/conversation" width="380" height="860" style="border:1px solid #ccc"></iframe>
<iframe id="evil" width="10" height="10"></iframe>
<script>
var asked = 0;
window.addEventListener('message', function (ev) {{
  if (ev.data !== 'chatwoot-dashboard-app:fetch-info') return;
  asked += 1;
  document.body.setAttribute('data-asked', String(asked));
  var context = {{ event: 'appContext', data: {{
    conversation: {{ id: 102, account_id: {account}, inbox_id: 1, status: 'open' }},
    contact: {{ id: 2, name: 'Customer' }},
    currentAgent: {{ id: 2, name: 'Maria Lopez', email: 'maria@example.com' }} }} }};
  ev.source.postMessage(JSON.stringify(context), '*');
}});
window.sendEvil = function () {{ document.getElementById('evil').src = '{evil}/evil'; }};
</script></body></html>"#
    )
}

/// A page on an origin that is not allowed: posts conversation 103's context to the console
/// frame (its sibling).
fn evil_page(account: i64) -> String {
    format!(
        r#"<!doctype html><html><body><script>
var context = {{ event: 'appContext', data: {{ conversation: {{ id: 103, account_id: {account} }},
  contact: {{}}, currentAgent: {{ id: 9, name: 'Mallory', email: 'm@example.com' }} }} }};
setInterval(function () {{ parent.frames[0].postMessage(JSON.stringify(context), '*'); }}, 200);
</script></body></html>"#
    )
}

#[tokio::test]
async fn the_embedded_panel_shows_only_the_conversation_chatwoot_names_and_ignores_other_origins() {
    let _serial = SERIAL.lock().await;
    let account = 1;
    let evil = other_site(vec![("/evil", evil_page(account))]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let parent = format!("http://{}", listener.local_addr().expect("addr"));
    let site = Site::start(vec![parent.clone()]).await;
    crate::harness::serve_pages(
        listener,
        vec![("/", parent_page(&site.base, account, &evil))],
    );

    let browser = Browser::start(800, 900).await;
    browser
        .client
        .goto(&format!("{parent}/"))
        .await
        .expect("navigates");
    browser.client.enter_frame(0).await.expect("into the panel");
    // Signing in inside the frame (a partitioned, SameSite=None cookie).
    submit_token(
        &browser,
        &copydesk_testkit::fake_chatwoot::agent_token(MARIA),
    )
    .await;
    let id_102 = site.draft_of(102).await;
    let source = browser
        .wait_source("conversation 102's draft", |s| {
            s.contains(&format!("data-id=\"{id_102}\""))
        })
        .await;
    for other in [101, 103] {
        let id = site.draft_of(other).await;
        assert!(!source.contains(&id), "only 102's draft is shown, not {id}");
    }

    // A message from an origin that is not allowed is ignored.
    browser
        .client
        .enter_parent_frame()
        .await
        .expect("to the parent");
    browser
        .client
        .execute("window.sendEvil()", vec![])
        .await
        .expect("evil frame loads");
    browser.screenshot("embedded").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    browser.client.enter_frame(0).await.expect("into the panel");
    let search = browser
        .client
        .execute("return window.location.search", vec![])
        .await
        .expect("the frame's location");
    assert_eq!(search, serde_json::json!("?c=102&a=1"), "still on 102");
    let source = browser.client.source().await.expect("source");
    assert!(source.contains(&format!("data-id=\"{id_102}\"")));

    // Approve from the panel: exactly one reply in 102.
    browser
        .wait_for("#approve")
        .await
        .click()
        .await
        .expect("click");
    browser.wait_for("#no-draft").await;
    assert_eq!(site.wait_replies(102, 1).await.len(), 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(site.pipeline.chatwoot.public_replies(102).len(), 1);
    assert!(site.pipeline.chatwoot.public_replies(101).is_empty());
    browser.close().await;
}
