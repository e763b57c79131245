//! `send_reply` (`copydesk-notes`): posts an approved, edited or operator-written reply as a
//! public message **exactly once**.
//!
//! The reply carries `source_id = "copydesk:<approval id>"` and is posted through
//! [`super::post_once`]: under the approval's lock, every attempt re-reads the conversation
//! and every message since the customer's: if the reply is already there (an earlier attempt
//! posted it and then lost the answer), the item is marked sent without posting again. The
//! reply is held back, not sent, when the conversation was resolved, a newer customer message
//! arrived, or an agent already answered publicly after the customer's message.

use std::sync::Arc;

use copydesk::approvals::{ApprovalItem, ApprovalStatus, DecideOutcome};
use copydesk::chatwoot::{
    ChatwootAccounts, ChatwootClient, ConversationStatus, Message, MessageType, NewMessage,
};
use copydesk::jobs::SendReply;
use copydesk::queue::{JobAttempt, JobError};

use super::kind::{JobHandler, Kind, Role, Setup};
use super::post_once::{PostOnce, Posted, Step};
use super::{chatwoot_failure, store_failure, Deps};

/// Statuses from which a reply may be sent.
const SENDABLE: [ApprovalStatus; 3] = [
    ApprovalStatus::Approved,
    ApprovalStatus::Edited,
    ApprovalStatus::Rejected,
];

impl Kind for SendReply {
    const ROLE: Role = Role::NOTES;
    const CALLS_CHATWOOT: bool = true;
    type Handler = Handler;
    fn handler(setup: &Setup<'_>) -> anyhow::Result<Handler> {
        Ok(Handler::with_accounts(
            setup.deps.clone(),
            setup.chatwoot()?,
        ))
    }
}

impl JobHandler for Handler {
    type Job = SendReply;
    async fn run_job(&self, job: SendReply, attempt: JobAttempt) -> Result<(), JobError> {
        self.handle(job, attempt).await
    }
}

/// The `send_reply` handler.
#[derive(Clone, Debug)]
pub struct Handler {
    deps: Deps,
    chatwoot: Arc<ChatwootAccounts>,
}

/// The `source_id` (and idempotency key) of an approval item's public reply.
pub fn reply_key(approval_id: &str) -> String {
    format!("copydesk:{approval_id}")
}

/// Why a reply is not sent after all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldBack {
    /// The conversation is resolved.
    Resolved,
    /// The customer wrote again after the drafted message.
    NewerCustomerMessage,
    /// Someone already answered publicly after the customer's message.
    AgentReplied,
}

impl HoldBack {
    /// The reason stored on the item.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Resolved => "conversation resolved before the reply was sent",
            Self::NewerCustomerMessage => "the customer wrote again after the drafted message",
            Self::AgentReplied => "an agent already replied in the conversation",
        }
    }
}

/// What the latest messages say about sending: already sent (with its id), hold back, or go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendCheck {
    /// Our reply is already in the conversation.
    AlreadySent(i64),
    /// Do not send.
    Hold(HoldBack),
    /// Send it.
    Send,
}

/// Decides from the conversation's status and latest messages (oldest first).
pub fn check_before_send(
    status: ConversationStatus,
    messages: &[Message],
    customer_message_id: i64,
    key: &str,
) -> SendCheck {
    if let Some(ours) = messages.iter().find(|m| m.idempotency_key() == Some(key)) {
        return SendCheck::AlreadySent(ours.id);
    }
    let later = messages
        .iter()
        .filter(|m| m.id > customer_message_id && !m.private);
    for message in later {
        match message.message_type {
            MessageType::Incoming => return SendCheck::Hold(HoldBack::NewerCustomerMessage),
            MessageType::Outgoing => return SendCheck::Hold(HoldBack::AgentReplied),
            _ => {}
        }
    }
    if status == ConversationStatus::Resolved {
        return SendCheck::Hold(HoldBack::Resolved);
    }
    SendCheck::Send
}

impl Handler {
    /// A stage posting through `chatwoot` (one account).
    pub fn new(deps: Deps, chatwoot: Arc<ChatwootClient>) -> Self {
        let single = ChatwootAccounts::single(ChatwootClient::clone(&chatwoot));
        Self::with_accounts(deps, Arc::new(single))
    }

    /// A stage posting through the client of each job's account.
    pub fn with_accounts(deps: Deps, chatwoot: Arc<ChatwootAccounts>) -> Self {
        Self { deps, chatwoot }
    }

    /// Handles one attempt.
    pub async fn handle(&self, job: SendReply, _attempt: JobAttempt) -> Result<(), JobError> {
        let approvals = &self.deps.approvals;
        let item = self.deps.approval_item(job.approval_id.as_str()).await?;
        if item.reply_message_id.is_some()
            || matches!(item.status, ApprovalStatus::Sent | ApprovalStatus::HeldBack)
        {
            return Ok(());
        }
        let Some(text) = reply_text(&item) else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "approval item {} is {} and has no reply to send",
                item.doc.id,
                item.status.as_str()
            )));
        };
        let key = reply_key(&item.doc.id);
        let chatwoot = super::post_note::account_client(
            &self.chatwoot,
            job.account_id.get(),
            item.doc.account_id,
        )?;
        let conversation = chatwoot
            .get_conversation(job.conversation_id.get())
            .await
            .map_err(chatwoot_failure)?;
        let post = PostOnce {
            chatwoot,
            queue: &self.deps.queue,
            conversation_id: job.conversation_id.get(),
            after_id: item.doc.message_id,
            message: NewMessage::public_reply(text).with_idempotency_key(key.as_str()),
        };
        let decide = |messages: &[Message]| match check_before_send(
            conversation.status,
            messages,
            item.doc.message_id,
            &key,
        ) {
            SendCheck::Hold(why) => Step::Skip(why),
            SendCheck::Send | SendCheck::AlreadySent(_) => Step::Post,
        };
        let record = async |posted: &Posted<HoldBack>| match posted {
            Posted::Found(id) | Posted::New(id) => self.mark_sent(&item, *id).await,
            Posted::Skipped(why) => {
                tracing::info!(reason = why.reason(), "reply held back");
                let outcome = approvals
                    .transition(
                        &item.doc.id,
                        &SENDABLE,
                        ApprovalStatus::HeldBack,
                        Some(("held_back_reason", why.reason().to_owned())),
                    )
                    .await
                    .map_err(store_failure)?;
                copydesk::observe::reply_settled(&outcome, "held_back");
                settled(outcome)
            }
        };
        post.run(decide, record).await.map(|_| ())
    }

    async fn mark_sent(&self, item: &ApprovalItem, message_id: i64) -> Result<(), JobError> {
        let mut conn = self.deps.queue.connection();
        if let Err(error) = copydesk::learning::record_sent(
            &mut conn,
            self.deps.queue.keys(),
            &item.doc.id,
            copydesk::domain::now_ms(),
        )
        .await
        {
            return Err(JobError::retryable(error));
        }
        let outcome = self
            .deps
            .approvals
            .transition(
                &item.doc.id,
                &SENDABLE,
                ApprovalStatus::Sent,
                Some(("reply_message_id", message_id.to_string())),
            )
            .await
            .map_err(store_failure)?;
        copydesk::observe::reply_settled(&outcome, "sent");
        settled(outcome)
    }
}

/// The text to send: the edited text, the operator's reply on a rejection, else the draft.
fn reply_text(item: &ApprovalItem) -> Option<String> {
    item.reply_text().map(str::to_owned)
}

/// A transition that found the item already moved on (a concurrent replay) is fine; a missing
/// item is not.
fn settled(outcome: DecideOutcome) -> Result<(), JobError> {
    match outcome {
        DecideOutcome::Applied(_) | DecideOutcome::Conflict(_) => Ok(()),
        DecideOutcome::NotFound => Err(JobError::permanent(anyhow::anyhow!(
            "approval item vanished while sending"
        ))),
    }
}
