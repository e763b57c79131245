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

/// The conversation before `message_id` split in two: the customer's **burst** — their own
/// messages right before it, with no public reply in between, sent at most `cap` before
/// `created_at` (Unix seconds) — oldest first, and the context lines before the burst.
pub async fn context_and_burst(
    chatwoot: &ChatwootClient,
    conversation_id: i64,
    message_id: i64,
    created_at: i64,
    cap: std::time::Duration,
) -> Result<(Vec<ContextLine>, Vec<String>), ChatwootError> {
    let list = chatwoot
        .list_messages(conversation_id, MessagePage::Latest)
        .await?;
    Ok(split_burst(&list.messages, message_id, created_at, cap))
}

/// [`context_and_burst`] on a fetched message list (oldest first).
pub fn split_burst(
    messages: &[Message],
    message_id: i64,
    created_at: i64,
    cap: std::time::Duration,
) -> (Vec<ContextLine>, Vec<String>) {
    let earliest = created_at.saturating_sub(i64::try_from(cap.as_secs()).unwrap_or(i64::MAX));
    let before: Vec<&Message> = messages
        .iter()
        .filter(|m| m.id < message_id && is_public_conversation_message(m))
        .filter(|m| m.content.as_deref().is_some_and(|t| !t.trim().is_empty()))
        .collect();
    // Walk back from the newest: customer messages within the cap belong to the burst.
    let mut burst_start = before.len();
    while burst_start > 0 {
        let m = before[burst_start - 1];
        let within = m.created_at.is_none_or(|at| at >= earliest);
        if m.message_type != MessageType::Incoming || !within {
            break;
        }
        burst_start -= 1;
    }
    let burst = before[burst_start..]
        .iter()
        .filter_map(|m| m.content.as_deref().map(|t| t.trim().to_owned()))
        .collect();
    let earlier: Vec<Message> = before[..burst_start].iter().map(|m| (*m).clone()).collect();
    (context_before(&earlier, message_id), burst)
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
