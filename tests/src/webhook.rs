//! Sending webhooks the way Chatwoot does: compact JSON with `<`, `>`, `&` escaped, signed
//! with `X-Chatwoot-Timestamp` + `X-Chatwoot-Signature`, a fresh `X-Chatwoot-Delivery` each.
//!
//! The signing here is written independently of `copydesk::signature`, so the ingress's
//! verifier is tested against a second implementation of Chatwoot's algorithm. Payload
//! builders start from the real payload fixtures in `tests/fixtures/chatwoot/` and change
//! only ids and content.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `"{timestamp}.{body}"`), as Chatwoot sends it.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Now in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .expect("the clock is after 1970")
}

/// A fresh delivery id (Chatwoot sends a UUID; any unique token will do).
pub fn new_delivery_id() -> String {
    ulid::Ulid::new().to_string()
}

/// Encodes `value` like Chatwoot (Rails `to_json`): compact, `<` `>` `&` as `\u003c` …
pub fn chatwoot_json(value: &Value) -> Vec<u8> {
    serde_json::to_string(value)
        .expect("a JSON value serialises")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .into_bytes()
}

/// Posts signed webhooks to one URL.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
    url: String,
    secret: String,
}

impl WebhookSender {
    /// A sender posting to `url` (the full webhook URL) signed with `secret`.
    pub fn new(http: reqwest::Client, url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            http,
            url: url.into(),
            secret: secret.into(),
        }
    }

    /// The webhook URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts `payload` now, with a fresh delivery id.
    pub async fn post(&self, payload: &Value) -> reqwest::Result<reqwest::Response> {
        self.post_as(payload, &new_delivery_id()).await
    }

    /// Posts `payload` now under `delivery_id` (to replay a delivery).
    pub async fn post_as(
        &self,
        payload: &Value,
        delivery_id: &str,
    ) -> reqwest::Result<reqwest::Response> {
        self.signed(chatwoot_json(payload), delivery_id, unix_now())
            .send()
            .await
    }

    /// A signed request for raw `body`, ready to be tampered with or sent.
    pub fn signed(
        &self,
        body: Vec<u8>,
        delivery_id: &str,
        timestamp: i64,
    ) -> reqwest::RequestBuilder {
        let timestamp = timestamp.to_string();
        let signature = sign(&self.secret, &timestamp, &body);
        self.unsigned(body, delivery_id)
            .header("X-Chatwoot-Timestamp", timestamp)
            .header("X-Chatwoot-Signature", signature)
    }

    /// The same request without signature headers.
    pub fn unsigned(&self, body: Vec<u8>, delivery_id: &str) -> reqwest::RequestBuilder {
        self.http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("X-Chatwoot-Delivery", delivery_id)
            .body(body)
    }
}

/// A payload fixture by file name (embedded, so the test binary needs no paths).
pub fn fixture(name: &str) -> Value {
    let text = match name {
        "contact_created.json" => include_str!("../fixtures/chatwoot/contact_created.json"),
        "conversation_created.json" => {
            include_str!("../fixtures/chatwoot/conversation_created.json")
        }
        "conversation_status_changed.json" => {
            include_str!("../fixtures/chatwoot/conversation_status_changed.json")
        }
        "conversation_typing_on.json" => {
            include_str!("../fixtures/chatwoot/conversation_typing_on.json")
        }
        "conversation_updated.json" => {
            include_str!("../fixtures/chatwoot/conversation_updated.json")
        }
        "message_created.json" => include_str!("../fixtures/chatwoot/message_created.json"),
        "message_created.outgoing_agent.json" => {
            include_str!("../fixtures/chatwoot/message_created.outgoing_agent.json")
        }
        "message_created.private_note.json" => {
            include_str!("../fixtures/chatwoot/message_created.private_note.json")
        }
        "message_updated.json" => include_str!("../fixtures/chatwoot/message_updated.json"),
        "webwidget_triggered.json" => include_str!("../fixtures/chatwoot/webwidget_triggered.json"),
        other => panic!("no fixture named {other}"),
    };
    serde_json::from_str(text).expect("fixtures are valid JSON")
}

/// Sets a message fixture's ids (top level and in its conversation).
fn with_message_ids(mut payload: Value, message_id: i64, conversation_id: i64) -> Value {
    payload["id"] = json!(message_id);
    payload["conversation"]["id"] = json!(conversation_id);
    if let Some(messages) = payload["conversation"]["messages"].as_array_mut() {
        for message in messages {
            message["conversation_id"] = json!(conversation_id);
        }
    }
    payload
}

/// A customer's public message (`message_created`, incoming, contact sender).
pub fn incoming_message(message_id: i64, conversation_id: i64, content: &str) -> Value {
    let mut payload =
        with_message_ids(fixture("message_created.json"), message_id, conversation_id);
    payload["content"] = json!(content);
    payload
}

/// Copydesk's own draft echoing back (`message_created`, outgoing, private).
pub fn private_note(message_id: i64, conversation_id: i64) -> Value {
    with_message_ids(
        fixture("message_created.private_note.json"),
        message_id,
        conversation_id,
    )
}

/// A public agent reply (`message_created`, outgoing, sender type user).
pub fn agent_reply(message_id: i64, conversation_id: i64, content: &str) -> Value {
    let mut payload = with_message_ids(
        fixture("message_created.outgoing_agent.json"),
        message_id,
        conversation_id,
    );
    payload["content"] = json!(content);
    payload
}

/// A new conversation with the customer's first message.
pub fn conversation_created(conversation_id: i64) -> Value {
    let mut payload = fixture("conversation_created.json");
    payload["id"] = json!(conversation_id);
    payload
}

/// A conversation update (assignment) at `updated_at` (float Unix seconds, as Chatwoot sends).
pub fn conversation_updated(conversation_id: i64, updated_at: f64) -> Value {
    let mut payload = fixture("conversation_updated.json");
    payload["id"] = json!(conversation_id);
    payload["updated_at"] = json!(updated_at);
    payload
}

/// A webhook with an event name Copydesk does not know.
pub fn unknown_event(name: &str) -> Value {
    let mut payload = fixture("contact_created.json");
    payload["event"] = json!(name);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_reproduces_the_chatwoot_example_vector() {
        let text = include_str!("../fixtures/chatwoot/signature_example.json");
        let example: Value = serde_json::from_str(text).expect("json");
        let header = sign(
            example["secret"].as_str().expect("secret"),
            example["headers"]["X-Chatwoot-Timestamp"]
                .as_str()
                .expect("timestamp"),
            example["body"].as_str().expect("body").as_bytes(),
        );
        assert_eq!(
            header,
            example["headers"]["X-Chatwoot-Signature"]
                .as_str()
                .expect("signature")
        );
    }

    #[test]
    fn chatwoot_json_escapes_like_rails() {
        let body = chatwoot_json(&json!({ "content": "Refund <urgent> & fast" }));
        assert_eq!(
            body,
            br#"{"content":"Refund \u003curgent\u003e \u0026 fast"}"#
        );
    }
}
