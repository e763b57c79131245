//! One account's part of a pass: page through the conversations active since the watermark,
//! read their messages since then, and turn what no webhook delivered into the jobs the
//! webhook would have started (same routing, same cause keys).
//!
//! What is fed, per conversation:
//! - `conversation_created` when it was created since the watermark (the assigner routes it);
//! - every public customer message since then: drafted (`lookup_knowledge`) when it is the
//!   customer's latest word (no agent reply after it) and the conversation is not resolved;
//!   otherwise only tracked, so nothing answered or closed is drafted; older than the window:
//!   listed as missed, never drafted;
//! - every public agent reply since then (lifecycle's first response);
//! - a status or assignee that differs from what the lifecycle knows (resolved during an
//!   outage: lifecycle is brought up to date without a draft).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use copydesk::approvals::ApprovalStore;
use copydesk::chatwoot::{
    ChatwootClient, ChatwootError, ContactSummary, Conversation, ConversationStatus, Message,
    MessagePage, MessageType,
};
use copydesk::domain::DeliveryId;
use copydesk::event::{recovered, route, Route, WebhookEvent};
use copydesk::jobs::{AssignConversation, Job, LookupKnowledge};
use copydesk::queue::{EnqueueOutcome, NewJob, QueueClient};
use copydesk::reconcile::{AccountPass, MissedMessage, ReconcileStore};
use tracing::Instrument as _;

use super::ReconcileConfig;
use crate::jobs::lifecycle_store::LifecycleStore;
use crate::lifecycle::Status;

/// Longest pause between two tries after a 429.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Messages per page of `GET .../messages` without `after` (Chatwoot's `MessageFinder`).
const MESSAGES_PER_PAGE: usize = 20;
/// Tries of one call after a 429.
const RATE_LIMIT_RETRIES: usize = 5;

/// The kinds of event a pass recovers (the `kind` label of
/// `copydesk_reconcile_recovered_total` and of [`Finding`]s, `missed` aside).
pub const RECOVERED_KINDS: [&str; 5] = [
    "conversation",
    "customer_message",
    "agent_reply",
    "status",
    "assignment",
];

/// What a pass found, one line per event (printed by `copydesk reconcile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `customer_message`, `agent_reply`, `status`, `assignment`, `conversation`, `missed`.
    pub kind: &'static str,
    /// Chatwoot account.
    pub account_id: i64,
    /// Conversation display id.
    pub conversation_id: i64,
    /// The message, for message events.
    pub message_id: Option<i64>,
    /// True when Copydesk had already seen it (its webhook arrived): nothing to do.
    pub seen: bool,
    /// True when it is (or, in a dry run, would be) drafted.
    pub drafted: bool,
    /// What it is, in a few words.
    pub detail: String,
}

/// An event routed like its webhook: its cause key and the jobs kept.
struct Routed {
    cause: Vec<String>,
    jobs: Vec<NewJob>,
}

impl Finding {
    fn new(
        kind: &'static str,
        account_id: i64,
        conversation_id: i64,
        message_id: Option<i64>,
        seen: bool,
        drafted: bool,
        detail: String,
    ) -> Self {
        Self {
            kind,
            account_id,
            conversation_id,
            message_id,
            seen,
            drafted,
            detail,
        }
    }
}

/// Everything one account scan needs.
pub(crate) struct AccountScan<'a> {
    pub(crate) client: &'a ChatwootClient,
    pub(crate) queue: &'a QueueClient,
    pub(crate) store: &'a ReconcileStore,
    pub(crate) lifecycle: &'a LifecycleStore,
    pub(crate) approvals: &'a ApprovalStore,
    pub(crate) config: &'a ReconcileConfig,
    pub(crate) dry_run: bool,
    pub(crate) now_ms: i64,
    pub(crate) since_ms: i64,
    pub(crate) calls: AtomicU64,
}

/// Why a scan stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScanError {
    #[error(transparent)]
    Chatwoot(#[from] ChatwootError),
    #[error("Redis: {0}")]
    Redis(String),
    #[error("another pass took over the lock")]
    LockLost,
}

impl<'a> AccountScan<'a> {
    /// Runs the scan; `keep_lock` is asked after every conversation (false: stop).
    pub(crate) async fn run<F, Fut>(
        &self,
        pass: &mut AccountPass,
        findings: &mut Vec<Finding>,
        mut keep_lock: F,
    ) -> Result<(), ScanError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut complete = false;
        for page in 1..=self.config.max_pages {
            let list = self.call(|| self.client.list_conversations(page)).await?;
            let conversations = list.data.payload;
            let active: Vec<&Conversation> = conversations
                .iter()
                .filter(|c| activity_ms(c) >= self.since_ms)
                .collect();
            for conversation in &active {
                self.conversation(conversation, pass, findings).await?;
                pass.conversations_scanned += 1;
                if !keep_lock().await {
                    return Err(ScanError::LockLost);
                }
            }
            // Chatwoot lists the most recent activity first: a page with nothing active
            // since the watermark (or an empty one) is the end.
            if active.is_empty() {
                complete = true;
                break;
            }
        }
        pass.complete = complete;
        if !complete {
            pass.error = Some(format!(
                "more than {} pages of conversations active since the watermark \
                 (COPYDESK_RECONCILE_MAX_PAGES): the rest is read next pass",
                self.config.max_pages
            ));
        }
        Ok(())
    }

    async fn conversation(
        &self,
        conversation: &Conversation,
        pass: &mut AccountPass,
        findings: &mut Vec<Finding>,
    ) -> Result<(), ScanError> {
        let account = self.client.account_id();
        let (contact, messages) = self.messages_since(conversation.id).await?;
        let cutoff_ms = self.now_ms - self.config.window.as_millis() as i64;
        let resolved = conversation.status == ConversationStatus::Resolved;
        let found = |kind, message_id, seen, drafted, detail: String| {
            Finding::new(
                kind,
                account,
                conversation.id,
                message_id,
                seen,
                drafted,
                detail,
            )
        };
        if conversation.created_at.unwrap_or(0) * 1000 >= self.since_ms.max(cutoff_ms) {
            let customer: Vec<Message> = messages
                .iter()
                .filter(|m| is_customer(m))
                .take(1)
                .cloned()
                .collect();
            let event =
                recovered::conversation_created(account, conversation, contact.as_ref(), &customer);
            let what = format!("{account}-{}-c", conversation.id);
            let (seen, _) = self
                .feed(
                    &event,
                    &what,
                    |j| !(resolved && j.queue == AssignConversation::QUEUE),
                    "conversation",
                    pass,
                )
                .await?;
            findings.push(found(
                "conversation",
                None,
                seen,
                false,
                "conversation created".into(),
            ));
        }
        for (index, message) in messages.iter().enumerate() {
            let at_ms = message.created_at.unwrap_or(0) * 1000;
            let later = &messages[index + 1..];
            if is_customer(message) {
                let answered = later.iter().any(is_agent_reply);
                let excerpt = MissedMessage::excerpt_of(message.content.as_deref().unwrap_or(""));
                if at_ms < cutoff_ms {
                    if self
                        .missed(account, conversation.id, message, answered, excerpt.clone())
                        .await?
                    {
                        pass.missed += 1;
                        findings.push(found("missed", Some(message.id), false, false, excerpt));
                    }
                    continue;
                }
                let Some(event) =
                    recovered::message_created(account, conversation, contact.as_ref(), message)
                else {
                    continue;
                };
                // Drafted only when it is the customer's latest word in an unresolved
                // conversation: a reply to anything earlier would answer the wrong thing.
                let draft = !resolved && !answered;
                let what = format!("{account}-m{}", message.id);
                let (seen, drafted) = self
                    .feed(
                        &event,
                        &what,
                        |j| draft || j.queue != LookupKnowledge::QUEUE,
                        "customer_message",
                        pass,
                    )
                    .await?;
                findings.push(found(
                    "customer_message",
                    Some(message.id),
                    seen,
                    drafted && !seen,
                    excerpt,
                ));
            } else if is_agent_reply(message) && at_ms >= cutoff_ms {
                let Some(event) = recovered::message_created(account, conversation, None, message)
                else {
                    continue;
                };
                let what = format!("{account}-m{}", message.id);
                let (seen, _) = self
                    .feed(&event, &what, |_| true, "agent_reply", pass)
                    .await?;
                findings.push(found(
                    "agent_reply",
                    Some(message.id),
                    seen,
                    false,
                    "agent reply".into(),
                ));
            }
        }
        self.lifecycle_changes(conversation, pass, findings).await
    }

    /// Status and assignee as Chatwoot has them now, where the lifecycle knows otherwise.
    async fn lifecycle_changes(
        &self,
        conversation: &Conversation,
        pass: &mut AccountPass,
        findings: &mut Vec<Finding>,
    ) -> Result<(), ScanError> {
        let account = self.client.account_id();
        let (_, state) = self
            .lifecycle
            .load(account, conversation.id)
            .await
            .map_err(|e| ScanError::Redis(e.to_string()))?;
        let Some(state) = state else {
            return Ok(());
        };
        let stamp = conversation
            .updated_at
            .map_or(activity_ms(conversation), |t| (t * 1000.0) as i64);
        if status_name(state.status) != conversation.status.as_str() {
            let event = recovered::status_changed(account, conversation);
            let what = format!("{account}-{}-s{stamp}", conversation.id);
            let (seen, _) = self.feed(&event, &what, |_| true, "status", pass).await?;
            let detail = format!(
                "{} → {}",
                status_name(state.status),
                conversation.status.as_str()
            );
            findings.push(Finding::new(
                "status",
                account,
                conversation.id,
                None,
                seen,
                false,
                detail,
            ));
        }
        let assignee = conversation.meta.assignee.as_ref().map(|a| a.id);
        if state.assignee_id != assignee {
            let event = recovered::conversation_updated(account, conversation);
            let what = format!("{account}-{}-a{stamp}", conversation.id);
            let (seen, _) = self
                .feed(&event, &what, |_| true, "assignment", pass)
                .await?;
            let detail = format!("assignee {:?} → {:?}", state.assignee_id, assignee);
            findings.push(Finding::new(
                "assignment",
                account,
                conversation.id,
                None,
                seen,
                false,
                detail,
            ));
        }
        Ok(())
    }

    /// Routes `event` like a webhook, keeps the jobs `keep` allows and enqueues them under the
    /// webhook's cause key. Returns (already seen, a draft job was among those kept).
    ///
    /// An event that is enqueued is the root of its own trace (a `recovered` span, in place of
    /// the ingress's webhook span), so a recovered message is followed like a delivered one;
    /// events already seen, and dry runs, make no span.
    async fn feed(
        &self,
        event: &WebhookEvent,
        what: &str,
        keep: impl Fn(&NewJob) -> bool,
        kind: &'static str,
        pass: &mut AccountPass,
    ) -> Result<(bool, bool), ScanError> {
        let delivery = recovered::delivery_id(what);
        let Some(routed) = self.routed(event, &delivery, &keep)? else {
            return Ok((true, false));
        };
        let drafts = routed
            .jobs
            .iter()
            .any(|j| j.queue == LookupKnowledge::QUEUE);
        let mut seen = self
            .store
            .seen(&routed.cause)
            .await
            .map_err(|e| ScanError::Redis(e.to_string()))?;
        if !seen && !self.dry_run && !routed.jobs.is_empty() {
            let span = tracing::info_span!(
                parent: None,
                "recovered",
                otel.name = "recovered",
                kind,
                delivery_id = %delivery,
            );
            // Routed again inside the span, so the jobs carry its trace context.
            let routed = span
                .in_scope(|| self.routed(event, &delivery, &keep))?
                .unwrap_or(routed);
            let outcome = self
                .queue
                .enqueue_batch(&routed.cause, &routed.jobs)
                .instrument(span)
                .await
                .map_err(|e| ScanError::Redis(e.to_string()))?;
            seen = outcome == EnqueueOutcome::Duplicate;
        }
        if seen {
            pass.already_seen += 1;
        } else {
            *pass.recovered.entry(kind.to_owned()).or_default() += 1;
        }
        Ok((seen, drafts))
    }

    /// `event`'s jobs (those `keep` allows) and its cause key, or `None` when a webhook of
    /// it would be ignored.
    fn routed(
        &self,
        event: &WebhookEvent,
        delivery: &DeliveryId,
        keep: impl Fn(&NewJob) -> bool,
    ) -> Result<Option<Routed>, ScanError> {
        let (dedupe_keys, mut jobs) = match route(event, delivery, self.now_ms) {
            Ok(Route::Enqueue { dedupe_keys, jobs }) => (dedupe_keys, jobs),
            Ok(Route::Ignore(_)) => return Ok(None),
            Err(error) => return Err(ScanError::Redis(error.to_string())),
        };
        jobs.retain(|j| keep(j));
        // The delivery key is ours and always new: the cause key alone tells a lost event.
        let cause = dedupe_keys
            .into_iter()
            .filter(|k| !k.starts_with("delivery:"))
            .collect();
        Ok(Some(Routed { cause, jobs }))
    }

    /// Whether an old, undrafted customer message is newly missed (no webhook, no draft).
    async fn missed(
        &self,
        account: i64,
        conversation: i64,
        message: &Message,
        answered: bool,
        excerpt: String,
    ) -> Result<bool, ScanError> {
        let cause = format!("message_created:{account}:{}", message.id);
        let redis = |e: redis::RedisError| ScanError::Redis(e.to_string());
        if self.store.seen(&[cause]).await.map_err(redis)?
            || self
                .store
                .is_missed(account, conversation, message.id)
                .await
                .map_err(redis)?
        {
            return Ok(false);
        }
        let approval = ApprovalStore::approval_id(account, conversation, message.id);
        if matches!(self.approvals.get(&approval).await, Ok(Some(_))) {
            return Ok(false);
        }
        if !self.dry_run {
            let missed = MissedMessage {
                account_id: account,
                conversation_id: conversation,
                message_id: message.id,
                created_at: message.created_at.unwrap_or(0),
                excerpt,
                answered,
                found_at_ms: self.now_ms,
            };
            self.store.record_missed(&[missed]).await.map_err(redis)?;
        }
        Ok(true)
    }

    /// The conversation's contact and its messages created since the watermark, oldest
    /// first (at most `message_pages` pages of 20, read newest first).
    async fn messages_since(
        &self,
        conversation: i64,
    ) -> Result<(Option<ContactSummary>, Vec<Message>), ScanError> {
        let mut page = MessagePage::Latest;
        let mut messages: Vec<Message> = Vec::new();
        let mut contact = None;
        for _ in 0..self.config.message_pages {
            let list = self
                .call(|| self.client.list_messages(conversation, page))
                .await?;
            if contact.is_none() {
                contact = list
                    .meta
                    .get("contact")
                    .and_then(|c| serde_json::from_value::<ContactSummary>(c.clone()).ok());
            }
            let Some(oldest) = list.messages.iter().map(|m| m.id).min() else {
                break;
            };
            // Chatwoot pages hold 20: a shorter page is the conversation's start.
            let last_page = list.messages.len() < MESSAGES_PER_PAGE;
            let reached_watermark = list
                .messages
                .iter()
                .any(|m| m.created_at.unwrap_or(0) * 1000 < self.since_ms);
            let mut older = list.messages;
            older.append(&mut messages);
            messages = older;
            if reached_watermark || last_page {
                break;
            }
            page = MessagePage::Before(oldest);
        }
        messages.sort_by_key(|m| m.id);
        messages.dedup_by_key(|m| m.id);
        messages.retain(|m| m.created_at.unwrap_or(0) * 1000 >= self.since_ms);
        Ok((contact, messages))
    }

    /// One Chatwoot call, retried with exponential backoff while Chatwoot answers 429.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, ChatwootError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ChatwootError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.config.backoff)
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(RATE_LIMIT_RETRIES)
            .with_jitter();
        let mut call = call;
        (|| {
            self.calls.fetch_add(1, Ordering::Relaxed);
            call()
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e: &ChatwootError| matches!(e, ChatwootError::Status { status: 429, .. }))
        .notify(|_, pause| {
            tracing::warn!(
                pause_ms = pause.as_millis() as u64,
                "Chatwoot answered 429: backing off"
            );
        })
        .await
    }
}

fn is_customer(message: &Message) -> bool {
    message.message_type == MessageType::Incoming
        && !message.private
        && message.sender_type.as_deref() == Some("Contact")
}

fn is_agent_reply(message: &Message) -> bool {
    message.message_type == MessageType::Outgoing
        && !message.private
        && message.sender_type.as_deref() == Some("User")
}

/// When the conversation last had activity (Unix ms).
fn activity_ms(conversation: &Conversation) -> i64 {
    conversation
        .last_activity_at
        .or(conversation.updated_at.map(|t| t as i64))
        .or(conversation.created_at)
        .unwrap_or(0)
        * 1000
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Open => "open",
        Status::Pending => "pending",
        Status::Snoozed => "snoozed",
        Status::Resolved => "resolved",
    }
}
