//! The conversation context a draft is written with: the last few public messages before the
//! customer's message, from Chatwoot's message list.

use copydesk::chatwoot::{ChatwootClient, ChatwootError, Message, MessagePage, MessageType};
use copydesk::jobs::ContextLine;

/// Earlier messages kept for drafting.
pub const CONTEXT_MESSAGES: usize = 5;

/// The public messages of the conversation older than `message_id`, oldest first, at most
/// [`CONTEXT_MESSAGES`]. Private notes (our drafts among them), activities and templates are
/// left out.
pub async fn recent_context(
    chatwoot: &ChatwootClient,
    conversation_id: i64,
    message_id: i64,
) -> Result<Vec<ContextLine>, ChatwootError> {
    let list = chatwoot
        .list_messages(conversation_id, MessagePage::Latest)
        .await?;
    Ok(context_before(&list.messages, message_id))
}

/// The context lines among `messages` (oldest first) that precede `message_id`.
pub fn context_before(messages: &[Message], message_id: i64) -> Vec<ContextLine> {
    let lines: Vec<ContextLine> = messages
        .iter()
        .filter(|m| m.id < message_id && is_public_conversation_message(m))
        .filter_map(|m| {
            let text = m.content.as_deref()?.trim();
            (!text.is_empty()).then(|| ContextLine {
                from_customer: m.message_type == MessageType::Incoming,
                text: text.to_owned(),
            })
        })
        .collect();
    let skip = lines.len().saturating_sub(CONTEXT_MESSAGES);
    lines.into_iter().skip(skip).collect()
}

/// True for a message the customer can see: incoming, or outgoing and not private.
pub fn is_public_conversation_message(message: &Message) -> bool {
    match message.message_type {
        MessageType::Incoming => true,
        MessageType::Outgoing => !message.private,
        _ => false,
    }
}
