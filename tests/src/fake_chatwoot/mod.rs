//! A fake Chatwoot for tests, the load generator and the demo: an in-memory account served
//! over real HTTP (hyper 1 on `127.0.0.1:0`) that answers exactly the Application API calls
//! `copydesk::chatwoot::ChatwootClient` makes, with Chatwoot v4.16.2's shapes and quirks:
//! 401 JSON without a valid `api_access_token`, 404 for unknown accounts, conversations and
//! routes, 422 for invalid messages, integer `message_type: 0` stored as a customer message,
//! `PUT .../conversations/{id}` ignoring `status`, 500 for a priority outside
//! `urgent|high|medium|low|null`, unknown assignees silently unassigning.
//!
//! - [`seed`] holds [`Seed`] (with [`Seed::demo`]) and the stored records.
//! - [`faults`] holds [`Fault`] and [`FaultRates`]: fail the next N, fail a seeded share,
//!   answer late, apply then drop the connection.
//! - [`routes`] holds [`Endpoint`], the routes served.
//! - [`profiles`]: per-agent access tokens, `GET /api/v1/profile`, Dashboard Apps.
//! - `store` holds the state and what each route does; `server` the HTTP side.

pub mod faults;
pub mod profiles;
pub mod routes;
pub mod seed;
mod server;
mod store;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use copydesk::chatwoot::{AvailabilityStatus, ChatwootConfig, MessageType};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use faults::{Fault, FaultRates};
pub use profiles::agent_token;
pub use routes::Endpoint;
pub use seed::{
    FakeAgent, FakeContact, FakeConversation, FakeInbox, FakeMessage, FakeSender, FakeTeam, Seed,
    SeedConversation,
};
pub use server::RecordedRequest;

use server::Shared;
use store::Store;

/// A running fake Chatwoot; stops when dropped.
#[derive(Debug)]
pub struct FakeChatwoot {
    shared: Arc<Shared>,
    addr: SocketAddr,
    account_id: i64,
    shutdown: CancellationToken,
}

impl FakeChatwoot {
    /// Starts a fake holding `seed` on a free port of 127.0.0.1.
    pub async fn start(seed: Seed) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port on 127.0.0.1 can be bound");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            token: seed.token.clone(),
            store: Mutex::new(Store::from_seed(&seed)),
            faults: Mutex::default(),
            requests: Mutex::default(),
            others: Mutex::default(),
            late_writes: std::sync::atomic::AtomicUsize::new(0),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(server::serve(listener, shared.clone(), shutdown.clone()));
        Self {
            shared,
            addr,
            account_id: seed.account_id,
            shutdown,
        }
    }

    /// Serves a further account from `seed` (its own id, token, conversations, faults and
    /// request log) on the same address, as one Chatwoot installation serves several
    /// accounts; the handle observes and changes that account. A token of one account used
    /// on another's paths is refused 401, as Chatwoot does. Panics if the id is taken.
    pub fn add_account(&self, seed: Seed) -> FakeChatwoot {
        assert!(
            seed.account_id != self.account_id
                && !self
                    .shared
                    .others
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .any(|o| o.store().account_id == seed.account_id),
            "account {} is served already",
            seed.account_id
        );
        let shared = Arc::new(Shared {
            token: seed.token.clone(),
            store: Mutex::new(Store::from_seed(&seed)),
            faults: Mutex::default(),
            requests: Mutex::default(),
            others: Mutex::default(),
            late_writes: std::sync::atomic::AtomicUsize::new(0),
        });
        self.shared
            .others
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(shared.clone());
        FakeChatwoot {
            shared,
            addr: self.addr,
            account_id: seed.account_id,
            // Serves nothing itself: dropping the handle leaves the account served.
            shutdown: CancellationToken::new(),
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `api_access_token` it accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The account it serves.
    pub fn account_id(&self) -> i64 {
        self.account_id
    }

    /// A client config pointing at this fake (default timeout).
    pub fn client_config(&self) -> ChatwootConfig {
        ChatwootConfig::new(
            &self.base_url(),
            self.token().to_owned().into(),
            self.account_id,
        )
        .expect("the fake's base URL is a valid http URL")
    }

    // ----- observing state -----

    /// A conversation's current state, with all its messages.
    pub fn conversation(&self, conversation_id: i64) -> Option<FakeConversation> {
        self.shared
            .store()
            .conversations
            .get(&conversation_id)
            .cloned()
    }

    /// All messages of a conversation, oldest first (empty for an unknown one).
    pub fn messages(&self, conversation_id: i64) -> Vec<FakeMessage> {
        self.conversation(conversation_id)
            .map(|c| c.messages)
            .unwrap_or_default()
    }

    /// The private notes (outgoing, private) of a conversation.
    pub fn private_notes(&self, conversation_id: i64) -> Vec<FakeMessage> {
        self.messages(conversation_id)
            .into_iter()
            .filter(|m| m.private && m.message_type == MessageType::Outgoing)
            .collect()
    }

    /// The public replies (outgoing, not private) of a conversation.
    pub fn public_replies(&self, conversation_id: i64) -> Vec<FakeMessage> {
        self.messages(conversation_id)
            .into_iter()
            .filter(|m| !m.private && m.message_type == MessageType::Outgoing)
            .collect()
    }

    /// Messages stored as written by the customer (incoming).
    pub fn incoming_messages(&self, conversation_id: i64) -> Vec<FakeMessage> {
        self.messages(conversation_id)
            .into_iter()
            .filter(|m| m.message_type == MessageType::Incoming)
            .collect()
    }

    /// An agent's current state.
    pub fn agent(&self, agent_id: i64) -> Option<FakeAgent> {
        self.shared.store().agents.get(&agent_id).cloned()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests().clone()
    }

    /// Queued failures (from [`Self::fail_next`] / [`Self::fail_next_on`]) not yet picked: a
    /// request takes its fault when it arrives, before it is applied or answered.
    pub fn queued_faults(&self) -> u32 {
        self.shared.faults().queued()
    }

    /// Writes taken with [`Fault::ApplyAfter`] that are not applied yet: 0 means every late
    /// write has landed (what a test waits for before asserting nothing more appears).
    pub fn late_writes_pending(&self) -> usize {
        self.shared
            .late_writes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The requests that matched `endpoint`.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.shared
            .requests()
            .iter()
            .filter(|r| r.endpoint == Some(endpoint))
            .cloned()
            .collect()
    }

    // ----- changing state -----

    /// Sets an agent's availability (`false` when there is no such agent).
    pub fn set_agent_availability(&self, agent_id: i64, status: AvailabilityStatus) -> bool {
        match self.shared.store().agents.get_mut(&agent_id) {
            Some(agent) => {
                agent.availability_status = status;
                true
            }
            None => false,
        }
    }

    /// Adds (or replaces) a contact.
    pub fn add_contact(&self, contact: FakeContact) {
        self.shared.store().contacts.insert(contact.id, contact);
    }

    /// Adds (or replaces) a conversation, keeping any messages it carries.
    pub fn add_conversation(&self, conversation: FakeConversation) {
        self.shared.store().add_conversation(conversation);
    }

    /// The customer writes in a conversation, as through the widget (reopens a resolved or
    /// snoozed conversation). `None` when there is no such conversation.
    pub fn add_incoming_message(&self, conversation_id: i64, content: &str) -> Option<FakeMessage> {
        self.shared
            .store()
            .add_contact_message(conversation_id, content)
    }

    /// The customer wrote at `created_at` (Unix seconds), e.g. hours ago.
    pub fn add_incoming_message_at(
        &self,
        conversation_id: i64,
        content: &str,
        created_at: i64,
    ) -> Option<FakeMessage> {
        self.shared
            .store()
            .add_contact_message_at(conversation_id, content, created_at)
    }

    /// An agent changes the status in Chatwoot's UI (no webhook is sent by the fake).
    /// False when there is no such conversation.
    pub fn set_status(
        &self,
        conversation_id: i64,
        status: copydesk::chatwoot::ConversationStatus,
    ) -> bool {
        let mut store = self.shared.store();
        match store.conversations.get_mut(&conversation_id) {
            Some(conversation) => {
                conversation.status = status;
                true
            }
            None => false,
        }
    }

    // ----- faults -----

    /// The next `count` requests (any endpoint) meet `fault`.
    pub fn fail_next(&self, count: u32, fault: Fault) {
        self.shared.faults().fail_next(None, count, fault);
    }

    /// The next `count` requests to `endpoint` meet `fault`.
    pub fn fail_next_on(&self, endpoint: Endpoint, count: u32, fault: Fault) {
        self.shared.faults().fail_next(Some(endpoint), count, fault);
    }

    /// A seeded share of requests fail from now on (`None` stops it).
    pub fn set_fault_rates(&self, rates: Option<FaultRates>) {
        self.shared.faults().set_rates(rates);
    }

    /// Every routed request waits this long before being handled.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.faults().latency = latency;
    }

    /// Removes every fault, rate and latency.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }
}

impl Drop for FakeChatwoot {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
