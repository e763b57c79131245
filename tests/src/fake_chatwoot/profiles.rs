//! Per-agent access tokens, `GET /api/v1/profile` for whoever a token belongs to, and the
//! Dashboard Apps endpoints (`GET|POST /api/v1/accounts/{id}/dashboard_apps`).
//!
//! Every agent of the store has its own access token, [`agent_token`]`(id)`, besides the
//! seed's API token (which belongs to `token_user_id`), as in Chatwoot where each user has
//! one (Profile settings → Access token). The profile is the `user` schema of the
//! Application API with the user's `accounts` and their role in each; creating a Dashboard
//! App needs an administrator of the account (Chatwoot's policy answers 401 otherwise).

use serde_json::{json, Map, Value};

use super::seed::FakeAgent;
use super::store::{Answer, Store};

/// The access token of agent `id` in the fake (Chatwoot → Profile settings → Access token).
pub fn agent_token(id: i64) -> String {
    format!("fake-agent-token-{id}")
}

/// The user id of an agent token, if it names an agent of the store.
pub(crate) fn agent_of_token(store: &Store, token: &str) -> Option<i64> {
    let id: i64 = token.strip_prefix("fake-agent-token-")?.parse().ok()?;
    store.agents.contains_key(&id).then_some(id)
}

/// `GET /api/v1/profile` for user `user_id`.
pub(crate) fn profile(store: &Store, user_id: i64) -> Answer {
    match store.agents.get(&user_id) {
        Some(agent) => Answer::json(200, profile_json(store, agent)),
        None => Answer::json(401, json!({"error": "Invalid Access Token"})),
    }
}

fn profile_json(store: &Store, agent: &FakeAgent) -> Value {
    json!({
        "id": agent.id,
        "access_token": agent_token(agent.id),
        "account_id": store.account_id,
        "available_name": agent.name,
        "avatar_url": "",
        "confirmed": true,
        "display_name": null,
        "message_signature": null,
        "email": agent.email,
        "hmac_identifier": "",
        "inviter_id": null,
        "name": agent.name,
        "provider": "email",
        "pubsub_token": format!("pubsub-{}", agent.id),
        "role": agent.role,
        "ui_settings": {},
        "uid": agent.email,
        "type": null,
        "accounts": [{
            "id": store.account_id,
            "name": "Demo Parts",
            "status": "active",
            "active_at": null,
            "role": agent.role,
            "permissions": [agent.role.clone()],
            "availability": agent.availability_status.as_str(),
            "availability_status": agent.availability_status.as_str(),
            "auto_offline": true,
            "custom_role_id": null,
            "custom_role": null,
        }],
    })
}

/// `GET .../dashboard_apps`.
pub(crate) fn list_dashboard_apps(store: &Store) -> Answer {
    Answer::json(200, Value::Array(store.dashboard_apps.clone()))
}

/// `POST .../dashboard_apps` with `{"dashboard_app":{"title","content":[{"type":"frame","url"}]}}`.
pub(crate) fn create_dashboard_app(
    store: &mut Store,
    user_id: i64,
    params: &Map<String, Value>,
) -> Answer {
    let Some(user) = store.agents.get(&user_id).cloned() else {
        return Answer::json(401, json!({"error": "Invalid Access Token"}));
    };
    if user.role != "administrator" {
        return Answer::json(
            401,
            json!({"error": "You are not authorized to do this action"}),
        );
    }
    let Some(app) = params.get("dashboard_app").and_then(Value::as_object) else {
        return Answer::json(
            400,
            json!({"error": "param is missing or the value is empty: dashboard_app"}),
        );
    };
    let title = app.get("title").and_then(Value::as_str).unwrap_or("");
    if title.trim().is_empty() {
        return Answer::json(422, json!({"message": "Title can't be blank"}));
    }
    let content = app.get("content").cloned().unwrap_or(Value::Null);
    let valid_content = content.as_array().is_some_and(|items| {
        !items.is_empty()
            && items.iter().all(|item| {
                item.get("type").and_then(Value::as_str) == Some("frame")
                    && item
                        .get("url")
                        .and_then(Value::as_str)
                        .and_then(|u| reqwest::Url::parse(u).ok())
                        .is_some_and(|u| matches!(u.scheme(), "http" | "https"))
            })
    });
    if !valid_content {
        return Answer::json(422, json!({"message": "Content : Invalid data"}));
    }
    let id = store.dashboard_apps.len() as i64 + 1;
    let record = json!({
        "id": id,
        "title": title,
        "content": content,
        "created_at": "2026-01-01T00:00:00.000Z",
        "user": {
            "id": user.id,
            "name": user.name,
            "available_name": user.name,
            "avatar_url": "",
            "availability_status": user.availability_status.as_str(),
            "thumbnail": "",
        },
    });
    store.dashboard_apps.push(record.clone());
    Answer::json(200, record)
}
