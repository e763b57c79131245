//! Webhook events rebuilt from the Application API, for the reconciliation sweep: what
//! Chatwoot's webhook would have carried for a message or a conversation change that never
//! arrived. They go through [`route()`](super::route()) like a delivered webhook, so their jobs
//! and cause keys are the ones the webhook would have produced (a message that did arrive is a
//! duplicate; a webhook that arrives after the sweep is one too).

use crate::chatwoot::{ContactSummary, Conversation, Message};
use crate::domain::{DeliveryId, ReportedPriority, ReportedStatus};

use super::{
    ConversationMessage, Reference, Sender, Timestamp, WebhookConversation,
    WebhookConversationMeta, WebhookEvent, WebhookMessage,
};

/// `message_created` for an API message of `conversation` (its contact from the messages
/// list's `meta.contact`); `None` when the message has no creation time.
pub fn message_created(
    account_id: i64,
    conversation: &Conversation,
    contact: Option<&ContactSummary>,
    message: &Message,
) -> Option<WebhookEvent> {
    let created_at = Timestamp::from_secs_f64(message.created_at? as f64)?;
    let sender = match (message.sender_type.as_deref(), message.sender_id) {
        (Some("Contact"), _) => contact.map(contact_sender).or_else(|| {
            message.sender_id.map(|id| Sender {
                id,
                name: None,
                email: None,
                sender_type: Some("contact".to_owned()),
                custom_attributes: Default::default(),
            })
        }),
        (Some(kind), Some(id)) => Some(Sender {
            id,
            name: None,
            email: None,
            sender_type: Some(api_sender_type(kind).to_owned()),
            custom_attributes: Default::default(),
        }),
        _ => None,
    };
    let message = WebhookMessage {
        id: message.id,
        account: Reference {
            id: account_id,
            name: None,
        },
        conversation: webhook_conversation(account_id, conversation, contact, &[]),
        inbox: message
            .inbox_id
            .or(conversation.inbox_id)
            .map(|id| Reference { id, name: None }),
        content: message.content.clone(),
        content_type: message.content_type.clone(),
        content_attributes: message.content_attributes.clone(),
        message_type: message.message_type,
        private: message.private,
        created_at,
        sender,
        source_id: message.source_id.clone(),
    };
    Some(WebhookEvent::MessageCreated(Box::new(message)))
}

/// `conversation_created`, carrying the conversation's first messages (the assigner reads
/// the first customer message from them).
pub fn conversation_created(
    account_id: i64,
    conversation: &Conversation,
    contact: Option<&ContactSummary>,
    first_messages: &[Message],
) -> WebhookEvent {
    WebhookEvent::ConversationCreated(Box::new(webhook_conversation(
        account_id,
        conversation,
        contact,
        first_messages,
    )))
}

/// `conversation_status_changed` to the conversation's current status.
pub fn status_changed(account_id: i64, conversation: &Conversation) -> WebhookEvent {
    WebhookEvent::ConversationStatusChanged(Box::new(webhook_conversation(
        account_id,
        conversation,
        None,
        &[],
    )))
}

/// `conversation_updated` with the conversation's current assignee, status and priority.
pub fn conversation_updated(account_id: i64, conversation: &Conversation) -> WebhookEvent {
    WebhookEvent::ConversationUpdated(Box::new(webhook_conversation(
        account_id,
        conversation,
        None,
        &[],
    )))
}

/// The synthetic `X-Chatwoot-Delivery` of a recovered event: `reconcile-{what}` (only the
/// cause key decides whether it is new; this keeps deliveries of one pass apart).
pub fn delivery_id(what: &str) -> DeliveryId {
    let text: String = format!("reconcile-{what}")
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(DeliveryId::MAX_LEN)
        .collect();
    text.parse()
        .unwrap_or_else(|_| "reconcile".parse().expect("a valid delivery id"))
}

fn webhook_conversation(
    account_id: i64,
    conversation: &Conversation,
    contact: Option<&ContactSummary>,
    messages: &[Message],
) -> WebhookConversation {
    let contact = contact.or(conversation.meta.sender.as_ref());
    let meta = WebhookConversationMeta {
        sender: contact.map(contact_sender),
        assignee: conversation.meta.assignee.as_ref().map(|agent| Sender {
            id: agent.id,
            name: Some(agent.name.clone()),
            email: None,
            sender_type: Some("user".to_owned()),
            custom_attributes: Default::default(),
        }),
        team: conversation.meta.team.as_ref().map(|team| Reference {
            id: team.id,
            name: Some(team.name.clone()),
        }),
    };
    WebhookConversation {
        id: conversation.id,
        account: Some(Reference {
            id: account_id,
            name: None,
        }),
        inbox_id: conversation.inbox_id,
        status: ReportedStatus::from_name(conversation.status.as_str()),
        priority: conversation
            .priority
            .map(|p| ReportedPriority::from_name(p.as_str())),
        custom_attributes: conversation.custom_attributes.clone(),
        labels: conversation.labels.clone(),
        messages: messages
            .iter()
            .map(|m| ConversationMessage {
                id: m.id,
                content: m.content.clone(),
                message_type: m.message_type,
                private: m.private,
                created_at: m
                    .created_at
                    .and_then(|t| Timestamp::from_secs_f64(t as f64)),
                sender_type: m.sender_type.clone(),
                sender_id: m.sender_id,
            })
            .collect(),
        meta: Some(meta),
        created_at: conversation
            .created_at
            .and_then(|t| Timestamp::from_secs_f64(t as f64)),
        updated_at: conversation
            .updated_at
            .and_then(Timestamp::from_secs_f64)
            .or_else(|| {
                conversation
                    .last_activity_at
                    .and_then(|t| Timestamp::from_secs_f64(t as f64))
            }),
        changed_attributes: None,
    }
}

fn contact_sender(contact: &ContactSummary) -> Sender {
    Sender {
        id: contact.id,
        name: contact.name.clone(),
        email: contact.email.clone(),
        sender_type: Some("contact".to_owned()),
        custom_attributes: contact.custom_attributes.clone(),
    }
}

/// The API's `sender_type` (`User`, `AgentBot`, …) as the webhook's `type`.
fn api_sender_type(kind: &str) -> &'static str {
    match kind {
        "User" => "user",
        "AgentBot" => "agent_bot",
        "Contact" => "contact",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{route, Route};
    use crate::jobs::{Job, LookupKnowledge, TrackConversation};

    fn conversation() -> Conversation {
        serde_json::from_value(serde_json::json!({
            "id": 7, "account_id": 2, "inbox_id": 3, "status": "open", "priority": "high",
            "meta": {"sender": {"id": 9, "name": "Jane", "custom_attributes": {"vip": true}},
                     "assignee": {"id": 4, "name": "Priya"}},
            "created_at": 1_785_000_000, "last_activity_at": 1_785_000_100,
            "updated_at": 1_785_000_100.25
        }))
        .expect("a conversation")
    }

    fn message(id: i64, kind: u8, sender_type: &str) -> Message {
        serde_json::from_value(serde_json::json!({
            "id": id, "content": "does AN-6 fit?", "conversation_id": 7, "inbox_id": 3,
            "message_type": kind, "private": false, "created_at": 1_785_000_050,
            "sender_type": sender_type, "sender_id": 9
        }))
        .expect("a message")
    }

    #[test]
    fn a_recovered_customer_message_routes_like_its_webhook() {
        let c = conversation();
        let event = message_created(2, &c, c.meta.sender.as_ref(), &message(55, 0, "Contact"))
            .expect("an event");
        let Ok(Route::Enqueue { dedupe_keys, jobs }) =
            route(&event, &delivery_id("2-55"), 1_785_000_200_000)
        else {
            panic!("a customer message is enqueued");
        };
        assert_eq!(dedupe_keys[1], "message_created:2:55");
        assert_eq!(jobs[0].queue, LookupKnowledge::QUEUE);
        assert_eq!(jobs[1].queue, TrackConversation::QUEUE);
        let lookup: LookupKnowledge = serde_json::from_str(&jobs[0].payload).expect("a lookup");
        assert_eq!(lookup.account_id.get(), 2);
        assert_eq!(lookup.conversation_id.get(), 7);
        assert_eq!(lookup.contact.id, 9);
        assert_eq!(lookup.contact.custom_attributes["vip"], true);
        assert_eq!(lookup.inbox_id, Some(3));
    }

    #[test]
    fn agent_replies_and_status_changes_route_to_tracking() {
        let c = conversation();
        let reply = message_created(2, &c, None, &message(56, 1, "User")).expect("an event");
        let Ok(Route::Enqueue { jobs, .. }) = route(&reply, &delivery_id("x"), 0) else {
            panic!("an agent reply is tracked");
        };
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].queue, TrackConversation::QUEUE);
        let Ok(Route::Enqueue { dedupe_keys, .. }) =
            route(&status_changed(2, &c), &delivery_id("y"), 0)
        else {
            panic!("a status change is tracked");
        };
        assert_eq!(
            dedupe_keys[1],
            "conversation_status_changed:2:7:1785000100250"
        );
    }

    #[test]
    fn delivery_ids_are_always_valid() {
        assert_eq!(delivery_id("2-55").as_str(), "reconcile-2-55");
        assert_eq!(
            delivery_id(&"x".repeat(500)).as_str().len(),
            DeliveryId::MAX_LEN
        );
        assert_eq!(delivery_id("a b").as_str(), "reconcile-ab");
    }
}
