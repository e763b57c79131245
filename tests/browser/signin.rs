//! Sign-in, the queue, live updates and the refusals.

use std::time::Duration;

use copydesk::approvals::Priority;
use copydesk_testkit::fake_chatwoot::agent_token;
use copydesk_testkit::ingress_app::TEST_OPS_TOKEN;
use fantoccini::Locator;

use crate::harness::{submit_token, Browser, Site, DAVE, MARIA, SERIAL};

#[tokio::test]
async fn signing_in_shows_the_seed_drafts_in_priority_order_and_a_wrong_token_sets_no_cookie() {
    let _serial = SERIAL.lock().await;
    let site = Site::start(Vec::new()).await;
    let browser = Browser::start(1280, 900).await;

    // No session: the queue sends the browser to sign-in.
    browser
        .client
        .goto(&site.url("/ui/"))
        .await
        .expect("navigates");
    browser.wait_for("#token").await;
    assert!(browser
        .client
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/ui/signin"));

    // A wrong token: an error in words, no cookie.
    submit_token(&browser, "not-a-chatwoot-token").await;
    let error = browser.text_of("#signin-error").await;
    assert!(error.contains("did not accept"), "{error}");
    let cookies = browser.client.get_all_cookies().await.expect("cookies");
    assert!(
        cookies.iter().all(|c| c.name() != "copydesk_session"),
        "{cookies:?}"
    );

    // Maria's own token: the queue with the three drafts, urgent first, then oldest.
    submit_token(&browser, &agent_token(MARIA)).await;
    browser.wait_for("#queue-rows tr").await;
    let rows = browser
        .client
        .find_all(Locator::Css("#queue-rows tr"))
        .await
        .expect("rows");
    let mut shown = Vec::new();
    for row in &rows {
        shown.push(row.attr("data-id").await.expect("attr").expect("data-id"));
    }
    assert_eq!(
        shown,
        site.pending_ids().await,
        "the store's order: priority, then age"
    );
    assert_eq!(shown.len(), 3);
    let mut priorities = Vec::new();
    for id in &shown {
        let item = site
            .pipeline
            .approvals
            .get(id)
            .await
            .expect("redis")
            .expect("item");
        priorities.push(item.doc.priority);
    }
    assert!(
        priorities.windows(2).all(|w| w[0] <= w[1]),
        "{priorities:?}"
    );
    assert!(
        priorities.contains(&Priority::Urgent) || priorities.contains(&Priority::High),
        "{priorities:?}"
    );
    let title = browser.client.title().await.expect("title");
    assert!(
        title.starts_with("(3)"),
        "the tab title carries the pending count: {title}"
    );
    let who = browser.text_of(".who").await;
    assert!(who.contains("Maria Lopez"), "{who}");
    let cookie = browser
        .client
        .get_named_cookie("copydesk_session")
        .await
        .expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    browser.screenshot("queue").await;

    // Live: a newer customer message in 102 removes 102's draft and shows its new one.
    let old_102 = site.draft_of(102).await;
    let (message, status) = site
        .pipeline
        .customer_writes(102, "Also, do you ship the AN-6 fittings to Canada?")
        .await;
    assert_eq!(status, 202);
    let new_102 = site.pipeline.approval_id(102, message);
    let source = browser
        .wait_source("the new draft row", |s| {
            s.contains(&format!("row-{new_102}"))
        })
        .await;
    assert!(
        !source.contains(&format!("id=\"row-{old_102}\"")),
        "the superseded draft is gone"
    );
    assert!(browser
        .client
        .title()
        .await
        .expect("title")
        .starts_with("(3)"));

    // Live: a decision elsewhere removes the row without a reload.
    let token_http = reqwest::Client::new();
    let first = site.pending_ids().await[0].clone();
    let decided = token_http
        .post(format!("http://{}/api/approvals/{first}/reject", site.ops))
        .bearer_auth(TEST_OPS_TOKEN)
        .json(&serde_json::json!({"operator": "someone else", "reason": "test"}))
        .send()
        .await
        .expect("ops API answers");
    assert_eq!(decided.status(), 200);
    browser
        .wait_source("the decided row to disappear", |s| {
            !s.contains(&format!("id=\"row-{first}\""))
        })
        .await;
    let title = browser.client.title().await.expect("title");
    assert!(title.starts_with("(2)"), "{title}");
    browser.close().await;
}

#[tokio::test]
async fn refusals_csp_cookie_flags_and_roles_are_enforced_by_the_server() {
    let _serial = SERIAL.lock().await;
    let site = Site::start(Vec::new()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // No session: redirected to sign-in, remembering the page.
    let id = site.draft_of(101).await;
    let response = http
        .get(site.url(&format!("/ui/approvals/{id}")))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        location.starts_with("/ui/signin?next=%2Fui%2Fapprovals%2F"),
        "{location}"
    );

    // CSP on every page: no inline script, framing only by Chatwoot.
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let chatwoot = site.pipeline.chatwoot.base_url();
    assert!(
        csp.contains(&format!(
            "frame-ancestors 'self' {}",
            chatwoot.trim_end_matches('/')
        )),
        "{csp}"
    );

    // The cookie: HttpOnly, Secure, SameSite=Lax at top level; None + Partitioned framed.
    let signin = |dest: &'static str| {
        http.post(site.url("/ui/signin"))
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-dest", dest)
            .form(&[("token", agent_token(DAVE)), ("next", "/ui/".into())])
            .send()
    };
    let top = signin("document").await.expect("answers");
    let cookie = top.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for flag in ["HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let framed = signin("iframe").await.expect("answers");
    let cookie = framed.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for flag in ["HttpOnly", "Secure", "SameSite=None", "Partitioned"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    // A wrong token sets no cookie.
    let wrong = http
        .post(site.url("/ui/signin"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", "wrong"), ("next", "/ui/")])
        .send()
        .await
        .expect("answers");
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    // A cross-site POST is refused, session or not.
    let dave = site.session_for(&agent_token(DAVE)).await;
    let cross = http
        .post(site.url(&format!("/ui/approvals/{id}/approve")))
        .header("cookie", &dave)
        .header("sec-fetch-site", "cross-site")
        .form(&[("back", "/ui/")])
        .send()
        .await
        .expect("answers");
    assert_eq!(cross.status(), 403);
    let foreign_origin = http
        .post(site.url(&format!("/ui/approvals/{id}/approve")))
        .header("cookie", &dave)
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("answers");
    assert_eq!(foreign_origin.status(), 403);
    let item = site
        .pipeline
        .approvals
        .get(&id)
        .await
        .expect("redis")
        .expect("item");
    assert_eq!(
        item.status,
        copydesk::approvals::ApprovalStatus::Pending,
        "nothing decided"
    );

    // An agent cannot purge or retry dead letters; the ops-token admin can ask.
    for action in ["purge", "retry"] {
        let refused = http
            .post(site.url(&format!("/ui/dead-letters/some-letter/{action}")))
            .header("cookie", &dave)
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .expect("answers");
        assert_eq!(refused.status(), 403, "{action}");
        let body = refused.text().await.expect("body");
        assert!(body.contains("Only Chatwoot administrators"), "{body}");
    }
    let admin = site.session_for(TEST_OPS_TOKEN).await;
    let allowed = http
        .post(site.url("/ui/dead-letters/retry"))
        .header("cookie", &admin)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("answers");
    assert_eq!(allowed.status(), 303, "the admin may retry");

    // Bad input is answered in words: an edit of 200 000 characters, an unknown team.
    let long = "x".repeat(200_000);
    let edit = http
        .post(site.url(&format!("/ui/approvals/{id}/edit")))
        .header("cookie", &dave)
        .header("sec-fetch-site", "same-origin")
        .form(&[("content", long.as_str()), ("confirm", "1")])
        .send()
        .await
        .expect("answers");
    assert_eq!(edit.status(), 422);
    assert!(edit
        .text()
        .await
        .expect("body")
        .contains("200000 characters long"));
    let escalate = http
        .post(site.url(&format!("/ui/approvals/{id}/escalate")))
        .header("cookie", &dave)
        .header("sec-fetch-site", "same-origin")
        .form(&[("team", "Nobody"), ("note", "help")])
        .send()
        .await
        .expect("answers");
    assert_eq!(escalate.status(), 422);
    assert!(escalate
        .text()
        .await
        .expect("body")
        .contains("no team &quot;Nobody&quot;"));
    let reject = http
        .post(site.url(&format!("/ui/approvals/{id}/reject")))
        .header("cookie", &dave)
        .header("sec-fetch-site", "same-origin")
        .form(&[("reason", " ")])
        .send()
        .await
        .expect("answers");
    assert_eq!(reject.status(), 422);
    let item = site
        .pipeline
        .approvals
        .get(&id)
        .await
        .expect("redis")
        .expect("item");
    assert_eq!(
        item.status,
        copydesk::approvals::ApprovalStatus::Pending,
        "nothing decided"
    );

    // Customer text is text: `<script>` in a message renders escaped.
    let (message, _) = site
        .pipeline
        .customer_writes(103, "<script>alert(1)</script> is my AN-6 question")
        .await;
    let new = site.pipeline.approval_id(103, message);
    site.pipeline
        .wait_for(&new, Duration::from_secs(30), |_| true)
        .await
        .expect("drafted");
    let page = http
        .get(site.url(&format!("/ui/approvals/{new}")))
        .header("cookie", &dave)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped"
    );
    assert!(!page.contains("<script>alert(1)"), "never raw");
}
