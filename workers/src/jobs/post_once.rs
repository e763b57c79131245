//! Post a Chatwoot message exactly once: idempotency key → lock → look → post → record.
//! Used by the private note (`post_note`), the public reply (`send_reply`) and the
//! escalation note (`assign_conversation`).
//!
//! - **Lock**: `SET {prefix}:post-lock:{key} <token> NX PX` so two holders of one job (a
//!   stalled worker and the one that reclaimed its job) never both pass the "already
//!   posted?" check; released by compare-and-delete, so a holder whose lock expired cannot
//!   release its successor's. A job that finds the lock taken is retried when it expires.
//! - **Look**: the conversation's messages are read back from the latest, page by page, until
//!   one older than the message the post answers (`after_id`), at most [`MAX_PAGES`] pages:
//!   an earlier post is found however many messages arrived since.
//! - **Post** only when the look found nothing (and the caller's check says go), then
//!   **record** (the caller's store) while still holding the lock.

use std::time::Duration;

use copydesk::chatwoot::{ChatwootClient, ChatwootError, Message, MessagePage, NewMessage};
use copydesk::queue::{JobError, QueueClient};
use redis::aio::ConnectionManager;

use super::{chatwoot_failure, chatwoot_post_failure};

/// Pages of 20 read back at most (1 000 messages) looking for an earlier post.
pub const MAX_PAGES: usize = 50;

/// How long a post's lock is held at most (look + post + record take far less; a holder that
/// dies holding it delays the retry by at most this). Inside a job the lock lives only as long
/// as the job's visibility timeout (`lock_ttl`): a holder stalled longer has lost its lease,
/// and the lease fence (`copydesk::queue::ensure_held`) keeps it from posting.
pub const LOCK_TTL: Duration = Duration::from_secs(60);

/// The lock's time to live: [`LOCK_TTL`], or the running job's visibility timeout if shorter.
fn lock_ttl() -> Duration {
    copydesk::queue::current_visibility_timeout()
        .map_or(LOCK_TTL, |timeout| timeout.min(LOCK_TTL))
        .max(Duration::from_millis(100))
}

/// What the caller decides after the look found no earlier post.
#[derive(Debug)]
pub enum Step<T> {
    /// Post the message.
    Post,
    /// Do not post (e.g. a reply held back), with why.
    Skip(T),
}

/// What [`PostOnce::run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted<T> {
    /// An earlier attempt had posted it: this message id.
    Found(i64),
    /// Posted now: this message id.
    New(i64),
    /// Not posted, as the caller decided.
    Skipped(T),
}

/// One message to post once.
#[derive(Debug)]
pub struct PostOnce<'a> {
    /// Where.
    pub chatwoot: &'a ChatwootClient,
    /// The lock's Redis.
    pub queue: &'a QueueClient,
    /// The conversation.
    pub conversation_id: i64,
    /// The message the post answers: the look stops at messages older than this one.
    pub after_id: i64,
    /// The message, carrying its idempotency key.
    pub message: NewMessage,
}

impl PostOnce<'_> {
    /// Holding the message's lock: looks for an earlier post; if none, asks `decide` (which
    /// sees the messages after `after_id`, oldest first) and posts when it says so. The
    /// result is passed to `record` before the lock is released.
    pub async fn run<T, D, R>(self, decide: D, record: R) -> Result<Posted<T>, JobError>
    where
        T: Clone,
        D: FnOnce(&[Message]) -> Step<T>,
        R: AsyncFnOnce(&Posted<T>) -> Result<(), JobError>,
    {
        let key = self
            .message
            .idempotency_key()
            .ok_or_else(|| {
                JobError::permanent(anyhow::anyhow!(
                    "a post-once message needs an idempotency key"
                ))
            })?
            .to_owned();
        let lock = PostLock::acquire(self.queue, &key).await?;
        let result = self.locked(&key, decide, record).await;
        lock.release().await;
        result
    }

    async fn locked<T, D, R>(&self, key: &str, decide: D, record: R) -> Result<Posted<T>, JobError>
    where
        T: Clone,
        D: FnOnce(&[Message]) -> Step<T>,
        R: AsyncFnOnce(&Posted<T>) -> Result<(), JobError>,
    {
        let messages = messages_after(self.chatwoot, self.conversation_id, self.after_id)
            .await
            .map_err(chatwoot_failure)?;
        let posted = match messages.iter().find(|m| m.idempotency_key() == Some(key)) {
            Some(earlier) => {
                tracing::info!(
                    message = earlier.id,
                    key,
                    "posted by an earlier attempt; not posting again"
                );
                Posted::Found(earlier.id)
            }
            None => match decide(&messages) {
                Step::Skip(why) => Posted::Skipped(why),
                Step::Post => {
                    let sent = self
                        .chatwoot
                        .create_message(self.conversation_id, &self.message)
                        .await
                        .map_err(chatwoot_post_failure)?;
                    Posted::New(sent.id)
                }
            },
        };
        record(&posted).await?;
        Ok(posted)
    }
}

/// The conversation's messages with ids above `after_id`, oldest first: read back from the
/// latest page until a page reaches `after_id` (or is empty), at most [`MAX_PAGES`] pages.
pub async fn messages_after(
    chatwoot: &ChatwootClient,
    conversation_id: i64,
    after_id: i64,
) -> Result<Vec<Message>, ChatwootError> {
    let mut pages: Vec<Vec<Message>> = Vec::new();
    let mut page = MessagePage::Latest;
    for _ in 0..MAX_PAGES {
        let list = chatwoot.list_messages(conversation_id, page).await?;
        let Some(oldest) = list.messages.iter().map(|m| m.id).min() else {
            break;
        };
        let reached = oldest <= after_id;
        pages.push(
            list.messages
                .into_iter()
                .filter(|m| m.id > after_id)
                .collect(),
        );
        if reached {
            break;
        }
        page = MessagePage::Before(oldest);
    }
    let mut messages: Vec<Message> = pages.into_iter().rev().flatten().collect();
    messages.sort_by_key(|m| m.id);
    messages.dedup_by_key(|m| m.id);
    Ok(messages)
}

/// A held post lock.
struct PostLock {
    conn: ConnectionManager,
    key: String,
    token: String,
}

impl PostLock {
    /// Takes the lock of `idempotency_key`; when another holder has it, a retryable error
    /// that comes back when it expires.
    async fn acquire(queue: &QueueClient, idempotency_key: &str) -> Result<Self, JobError> {
        let key = queue.keys().post_lock(idempotency_key);
        let token = ulid::Ulid::new().to_string();
        let ttl = lock_ttl();
        let mut conn = queue.connection();
        let taken: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await
            .map_err(lock_failure)?;
        if taken.is_some() {
            return Ok(Self { conn, key, token });
        }
        let left_ms: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(lock_failure)?;
        let wait = Duration::from_millis(left_ms.clamp(100, ttl.as_millis() as i64) as u64);
        Err(JobError::RetryAfter(
            wait,
            anyhow::anyhow!(
                "another worker is posting {idempotency_key}; trying again when its lock ends"
            ),
        ))
    }

    /// Releases the lock if it is still ours (a failure only leaves it to expire).
    async fn release(mut self) {
        let released: Result<i64, _> = copydesk::redis_store::RELEASE_IF_HELD
            .key(&self.key)
            .arg(&self.token)
            .invoke_async(&mut self.conn)
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, key = %self.key, "could not release a post lock; it expires by itself");
        }
    }
}

fn lock_failure(error: redis::RedisError) -> JobError {
    JobError::Retryable(anyhow::Error::new(error).context("post lock in Redis"))
}
