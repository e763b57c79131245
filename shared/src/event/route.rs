//! Which jobs a webhook starts, and the dedupe keys that make a redelivery harmless.
//!
//! | event | condition | jobs |
//! | --- | --- | --- |
//! | `message_created` | incoming, public, contact sender | `lookup_knowledge` + `track_conversation` (customer message) |
//! | `message_created` | outgoing, public, agent (`type: "user"`) sender | `track_conversation` (agent reply) |
//! | `message_created` | private notes (our drafts echo back), templates, activities, bots | ignored |
//! | `message_updated` | `input_csat` with `submitted_values.csat_survey_response` | `track_conversation` (CSAT) |
//! | `conversation_created` | — | `assign_conversation` + `track_conversation` |
//! | `conversation_updated`, `conversation_status_changed` | — | `track_conversation` |
//! | anything else | — | ignored |
//!
//! Every enqueue is guarded by two dedupe keys (see [`Route::Enqueue`]):
//! - `delivery:{X-Chatwoot-Delivery}`: the same delivery sent twice;
//! - a cause key: Chatwoot also re-sends one event under a *new* delivery id, so the event
//!   itself is keyed too. Message events use `{event}:{account}:{message id}`; conversation
//!   display ids are only unique per account, hence the account in every key.
//!   `conversation_updated` and `conversation_status_changed` fire many times for one
//!   conversation, so their key adds the conversation's `updated_at` (ms): a re-sent event
//!   carries the same `updated_at` and is swallowed, a genuine later change has a new one and
//!   is queued. A CSAT key adds the rating, so a customer who changes their rating is tracked.

use crate::domain::{AccountId, ConversationId, DeliveryId, MessageId};
use crate::jobs::{
    AssignConversation, AssignReason, ContactRef, ConversationChange, JobMeta, LookupKnowledge,
    TrackConversation,
};
use crate::queue::{NewJob, QueueError};

use super::{
    EventKind, MessageType, SenderKind, WebhookConversation, WebhookEvent, WebhookMessage,
};

/// What the ingress should do with a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Write `jobs` unless any of `dedupe_keys` was seen (all-or-nothing).
    Enqueue {
        /// `delivery:{id}` and the event's cause key (module docs).
        dedupe_keys: Vec<String>,
        /// One or more jobs, possibly on different queues.
        jobs: Vec<NewJob>,
    },
    /// Answer 200 and write nothing.
    Ignore(IgnoreReason),
}

/// Why a webhook starts no job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// A private note: Copydesk's own drafts come back as these.
    PrivateNote,
    /// A template message (e.g. the CSAT survey being sent).
    Template,
    /// A system activity line.
    Activity,
    /// An incoming message whose sender is not a contact.
    IncomingNotFromContact,
    /// An outgoing message not written by an agent (a bot, an automation).
    OutgoingNotFromAgent,
    /// A `message_updated` that is not a CSAT answer.
    MessageUpdateWithoutCsat,
    /// A known event Copydesk does not act on (contacts, typing, widget).
    UnhandledEvent(EventKind),
    /// An event name Copydesk does not know.
    UnknownEvent,
}

impl IgnoreReason {
    /// A short, stable description for the response body and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrivateNote => "private note",
            Self::Template => "template message",
            Self::Activity => "activity message",
            Self::IncomingNotFromContact => "incoming message not from a contact",
            Self::OutgoingNotFromAgent => "outgoing message not from an agent",
            Self::MessageUpdateWithoutCsat => "message update without a CSAT answer",
            Self::UnhandledEvent(_) => "event not handled by Copydesk",
            Self::UnknownEvent => "unknown event",
        }
    }
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Routes a parsed webhook per the table in the module docs.
///
/// `delivery_id` is `X-Chatwoot-Delivery`; `received_at_ms` the ingress's clock. Fails only
/// if a job cannot be encoded as JSON.
pub fn route(
    event: &WebhookEvent,
    delivery_id: &DeliveryId,
    received_at_ms: i64,
) -> Result<Route, QueueError> {
    let meta = JobMeta::new(delivery_id.clone(), received_at_ms);
    let delivery_key = format!("delivery:{delivery_id}");
    let enqueue = |cause: String, jobs: Vec<NewJob>| Route::Enqueue {
        dedupe_keys: vec![delivery_key, cause],
        jobs,
    };
    Ok(match event {
        WebhookEvent::MessageCreated(message) => match message_created_jobs(message, &meta)? {
            Ok(jobs) => enqueue(message_key(EventKind::MessageCreated, message, ""), jobs),
            Err(reason) => Route::Ignore(reason),
        },
        WebhookEvent::MessageUpdated(message) => match message.csat_response() {
            Some(csat) if !message.private => {
                let change = ConversationChange::CsatAnswered {
                    rating: csat.rating,
                    feedback: csat.feedback_message,
                };
                let track = track(
                    &meta,
                    AccountId::new(message.account.id),
                    &message.conversation,
                    received_at_ms,
                    change,
                );
                let cause = message_key(
                    EventKind::MessageUpdated,
                    message,
                    &format!(":csat:{}", csat.rating),
                );
                enqueue(cause, vec![NewJob::encode(&track)?])
            }
            _ => Route::Ignore(IgnoreReason::MessageUpdateWithoutCsat),
        },
        WebhookEvent::ConversationCreated(conversation) => {
            let account_id = account_id(conversation);
            let assign = AssignConversation {
                meta: meta.clone(),
                account_id,
                conversation_id: ConversationId::new(conversation.id),
                reason: AssignReason::NewConversation {
                    first_message: conversation.first_customer_message().map(str::to_owned),
                },
            };
            let occurred = conversation
                .created_at
                .map_or(received_at_ms, |t| t.unix_ms());
            let change = ConversationChange::Created {
                status: conversation.status.clone(),
            };
            let track = track(&meta, account_id, conversation, occurred, change);
            let cause = conversation_key(EventKind::ConversationCreated, conversation, false);
            enqueue(
                cause,
                vec![NewJob::encode(&assign)?, NewJob::encode(&track)?],
            )
        }
        WebhookEvent::ConversationUpdated(conversation) => {
            let change = ConversationChange::Updated {
                status: conversation.status.clone(),
                assignee_id: conversation.assignee_id(),
                priority: conversation.priority.clone(),
            };
            conversation_change(
                EventKind::ConversationUpdated,
                conversation,
                &meta,
                change,
                enqueue,
            )?
        }
        WebhookEvent::ConversationStatusChanged(conversation) => {
            let change = ConversationChange::StatusChanged {
                status: conversation.status.clone(),
            };
            conversation_change(
                EventKind::ConversationStatusChanged,
                conversation,
                &meta,
                change,
                enqueue,
            )?
        }
        WebhookEvent::Contact(kind, _) | WebhookEvent::Typing(kind, _) => {
            Route::Ignore(IgnoreReason::UnhandledEvent(*kind))
        }
        WebhookEvent::WidgetTriggered(_) => {
            Route::Ignore(IgnoreReason::UnhandledEvent(EventKind::WebwidgetTriggered))
        }
        WebhookEvent::Unknown { .. } => Route::Ignore(IgnoreReason::UnknownEvent),
    })
}

/// Jobs for `message_created`, or why there are none.
fn message_created_jobs(
    message: &WebhookMessage,
    meta: &JobMeta,
) -> Result<Result<Vec<NewJob>, IgnoreReason>, QueueError> {
    if message.private {
        return Ok(Err(IgnoreReason::PrivateNote));
    }
    let sender_kind = message.sender.as_ref().map(|s| s.kind());
    let account_id = AccountId::new(message.account.id);
    let occurred = message.created_at.unix_ms();
    match (message.message_type, sender_kind) {
        (MessageType::Incoming, Some(SenderKind::Contact)) => {
            let sender = message.sender.as_ref();
            let lookup = LookupKnowledge {
                meta: meta.clone(),
                account_id,
                conversation_id: ConversationId::new(message.conversation.id),
                message_id: MessageId::new(message.id),
                inbox_id: message
                    .inbox
                    .as_ref()
                    .map(|i| i.id)
                    .or(message.conversation.inbox_id),
                content: message.content.clone().unwrap_or_default(),
                contact: ContactRef {
                    id: sender.map_or(0, |s| s.id),
                    name: sender.and_then(|s| s.name.clone()),
                    custom_attributes: sender
                        .map(|s| s.custom_attributes.clone())
                        .unwrap_or_default(),
                },
                conversation_attributes: message.conversation.custom_attributes.clone(),
                created_at: message.created_at.unix_secs(),
            };
            let change = ConversationChange::CustomerMessage {
                message_id: MessageId::new(message.id),
            };
            let track = track(meta, account_id, &message.conversation, occurred, change);
            Ok(Ok(vec![NewJob::encode(&lookup)?, NewJob::encode(&track)?]))
        }
        (MessageType::Incoming, _) => Ok(Err(IgnoreReason::IncomingNotFromContact)),
        (MessageType::Outgoing, Some(SenderKind::User)) => {
            let change = ConversationChange::AgentReply {
                message_id: MessageId::new(message.id),
                sender_id: message.sender.as_ref().map(|s| s.id),
            };
            let track = track(meta, account_id, &message.conversation, occurred, change);
            Ok(Ok(vec![NewJob::encode(&track)?]))
        }
        (MessageType::Outgoing, _) => Ok(Err(IgnoreReason::OutgoingNotFromAgent)),
        (MessageType::Template, _) => Ok(Err(IgnoreReason::Template)),
        (MessageType::Activity, _) => Ok(Err(IgnoreReason::Activity)),
    }
}

/// A `track_conversation` route for conversation updates and status changes.
fn conversation_change(
    kind: EventKind,
    conversation: &WebhookConversation,
    meta: &JobMeta,
    change: ConversationChange,
    enqueue: impl FnOnce(String, Vec<NewJob>) -> Route,
) -> Result<Route, QueueError> {
    let occurred = conversation
        .updated_at
        .map_or(meta.received_at_ms, |t| t.unix_ms());
    let track = track(
        meta,
        account_id(conversation),
        conversation,
        occurred,
        change,
    );
    Ok(enqueue(
        conversation_key(kind, conversation, true),
        vec![NewJob::encode(&track)?],
    ))
}

fn track(
    meta: &JobMeta,
    account_id: AccountId,
    conversation: &WebhookConversation,
    occurred_at_ms: i64,
    change: ConversationChange,
) -> TrackConversation {
    TrackConversation {
        meta: meta.clone(),
        account_id,
        conversation_id: ConversationId::new(conversation.id),
        occurred_at_ms,
        change,
    }
}

/// The account of a top-level conversation event (0 when Chatwoot left it out, which only
/// single-account installations could see).
fn account_id(conversation: &WebhookConversation) -> AccountId {
    AccountId::new(conversation.account.as_ref().map_or(0, |a| a.id))
}

fn message_key(kind: EventKind, message: &WebhookMessage, suffix: &str) -> String {
    format!("{kind}:{}:{}{suffix}", message.account.id, message.id)
}

/// `{event}:{account}:{conversation}`, plus `:{updated_at ms}` for events that repeat.
fn conversation_key(
    kind: EventKind,
    conversation: &WebhookConversation,
    per_change: bool,
) -> String {
    let base = format!("{kind}:{}:{}", account_id(conversation), conversation.id);
    match (per_change, conversation.updated_at) {
        (false, _) => base,
        (true, Some(updated)) => format!("{base}:{}", updated.unix_ms()),
        // Without `updated_at` the status is the best change marker there is.
        (true, None) => format!("{base}:{}", conversation.status),
    }
}
