//! State shared by one worker's claim loop, maintenance task and ack layer: the queue, the
//! shared connection, the slots (a semaphore of `max_in_flight` permits) and the entries this
//! consumer holds, each with its slot and its [`Lease`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use redis::aio::ConnectionManager;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::keys::GROUP;
use super::lease::Lease;
use super::{Keys, QueueSettings};

/// One consumer of one queue.
pub(crate) struct ConsumerState {
    pub(crate) queue: &'static str,
    pub(crate) keys: Keys,
    pub(crate) stream: String,
    pub(crate) delayed: String,
    pub(crate) conn: ConnectionManager,
    pub(crate) redis: redis::Client,
    pub(crate) settings: QueueSettings,
    pub(crate) max_attempts: u32,
    pub(crate) consumer: String,
    pub(crate) slots: Arc<Semaphore>,
    /// Entries claimed by this consumer and not settled yet (buffered or running), with their
    /// slot and lease. Lease renewal refreshes exactly these.
    owned: Mutex<HashMap<String, Held>>,
    /// `CLIENT ID` of the dedicated claim connection (0 before it exists), for `CLIENT UNBLOCK`.
    pub(crate) claim_client_id: AtomicI64,
}

/// One held entry: its slot (freed when it is released) and its lease.
struct Held {
    _slot: OwnedSemaphorePermit,
    lease: Arc<Lease>,
}

impl std::fmt::Debug for ConsumerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerState")
            .field("queue", &self.queue)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

impl ConsumerState {
    /// State for `queue` under `keys`.
    pub(crate) fn new(
        queue: &'static str,
        keys: Keys,
        conn: ConnectionManager,
        redis: redis::Client,
        settings: QueueSettings,
        consumer: String,
    ) -> Self {
        Self {
            stream: keys.stream(queue),
            delayed: keys.delayed(queue),
            keys,
            conn,
            redis,
            max_attempts: settings.max_attempts_for(queue),
            slots: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
            settings,
            consumer,
            queue,
            owned: Mutex::new(HashMap::new()),
            claim_client_id: AtomicI64::new(0),
        }
    }

    /// The consumer group name.
    pub(crate) fn group(&self) -> &'static str {
        GROUP
    }

    /// Records an entry claimed at `claimed_at` holding `slot`; false if it was already held
    /// (not re-run).
    pub(crate) fn hold(
        &self,
        entry_id: &str,
        slot: OwnedSemaphorePermit,
        claimed_at: Instant,
    ) -> bool {
        let mut owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        if owned.contains_key(entry_id) {
            return false;
        }
        let lease = Lease::new(claimed_at, self.settings.visibility_timeout);
        owned.insert(entry_id.to_owned(), Held { _slot: slot, lease });
        true
    }

    /// The lease of a held entry.
    pub(crate) fn lease(&self, entry_id: &str) -> Option<Arc<Lease>> {
        self.owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(entry_id)
            .map(|held| held.lease.clone())
    }

    /// Applies a renewal sent at `sent_at` for `ids`: the ones in `lost` belong to another
    /// consumer now (their leases are marked lost, which stops their jobs), the others are
    /// renewed.
    pub(crate) fn renewed(&self, ids: &[String], sent_at: Instant, lost: &[String]) {
        let lost: HashSet<&str> = lost.iter().map(String::as_str).collect();
        let owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            if let Some(held) = owned.get(id) {
                if lost.contains(id.as_str()) {
                    held.lease.lose();
                } else {
                    held.lease.renewed(sent_at);
                }
            }
        }
    }

    /// True if this consumer holds `entry_id`.
    pub(crate) fn holds(&self, entry_id: &str) -> bool {
        self.owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(entry_id)
    }

    /// Forgets a settled entry and frees its slot.
    pub(crate) fn release(&self, entry_id: &str) {
        let slot = self
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(entry_id);
        drop(slot);
    }

    /// Ids of the entries held now.
    pub(crate) fn held_ids(&self) -> Vec<String> {
        self.owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}
