//! `copydesk dashboard-app install` against the fake Chatwoot's `dashboard_apps` endpoint.

use copydesk_testkit::fake_chatwoot::{agent_token, Endpoint, FakeChatwoot, Seed};
use copydesk_workers::cli::dashboard_app::install;

use crate::harness::{MARIA, TOM};

#[tokio::test]
async fn installing_the_dashboard_app_needs_an_administrator_and_posts_a_frame() {
    let chatwoot = FakeChatwoot::start(Seed::demo()).await;
    let mut config = chatwoot.client_config();
    let url = "https://copydesk.example.com/ui/conversation";

    config.api_token = agent_token(MARIA).into();
    let refused = install(&config, url, "Copydesk")
        .await
        .expect_err("an agent may not");
    assert!(refused.to_string().contains("administrator"), "{refused}");

    config.api_token = agent_token(TOM).into();
    let id = install(&config, url, "Copydesk")
        .await
        .expect("an administrator may");
    assert_eq!(id, 1);
    let created = chatwoot.requests_to(Endpoint::CreateDashboardApp);
    let body = created
        .last()
        .and_then(|r| r.body.clone())
        .expect("a JSON body");
    assert_eq!(
        body,
        serde_json::json!({"dashboard_app": {"title": "Copydesk", "content": [{"type": "frame", "url": url}]}})
    );
    assert!(install(&config, "javascript:alert(1)", "x").await.is_err());
}
