//! Webhooks as Chatwoot would send them for the fake's state: the `message_created` payload
//! of a stored customer message, with the contact (and its custom attributes) as sender and
//! the conversation as it stands. Built on the real payload fixture, so every field Chatwoot
//! sends is there.

use serde_json::{json, Value};

use super::{FakeChatwoot, FakeSender};
use crate::webhook::incoming_message;

impl FakeChatwoot {
    /// The `message_created` webhook Chatwoot sends for message `message_id` of
    /// `conversation_id` (a customer message), or `None` when either is unknown.
    pub fn message_created_webhook(&self, conversation_id: i64, message_id: i64) -> Option<Value> {
        let conversation = self.conversation(conversation_id)?;
        let message = conversation
            .messages
            .iter()
            .find(|m| m.id == message_id)?
            .clone();
        let contact_id = match message.sender {
            FakeSender::Contact(id) => id,
            FakeSender::User(_) => return None,
        };
        let contact = self.shared.store().contacts.get(&contact_id).cloned()?;
        let content = message.content.clone().unwrap_or_default();
        let mut payload = incoming_message(message.id, conversation_id, &content);
        let sender = json!({
            "additional_attributes": {},
            "custom_attributes": contact.custom_attributes,
            "email": contact.email,
            "id": contact.id,
            "identifier": null,
            "name": contact.name,
            "phone_number": contact.phone_number,
            "thumbnail": "",
            "blocked": false,
            "type": "contact"
        });
        payload["account"]["id"] = json!(self.account_id);
        payload["created_at"] = json!(time_string(message.created_at));
        payload["sender"] = sender.clone();
        payload["inbox"]["id"] = json!(conversation.inbox_id);
        let c = &mut payload["conversation"];
        c["inbox_id"] = json!(conversation.inbox_id);
        c["status"] = json!(conversation.status.as_str());
        c["custom_attributes"] = Value::Object(conversation.custom_attributes.clone());
        c["meta"]["sender"] = sender.clone();
        c["contact_inbox"]["contact_id"] = json!(contact.id);
        if let Some(messages) = c["messages"].as_array_mut() {
            for m in messages {
                m["id"] = json!(message.id);
                m["content"] = json!(content);
                m["created_at"] = json!(message.created_at);
                m["sender_id"] = json!(contact.id);
                m["sender"] = sender.clone();
            }
        }
        Some(payload)
    }
}

/// Unix seconds as the ISO-8601 text Chatwoot puts at the top level of message webhooks.
fn time_string(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_string_matches_known_dates() {
        assert_eq!(super::time_string(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::time_string(1_785_147_330),
            "2026-07-27T10:15:30.000Z"
        );
    }
}
