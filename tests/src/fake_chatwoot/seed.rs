//! What a [`super::FakeChatwoot`] starts with: one account, inboxes, contacts, agents, teams
//! and conversations. [`Seed::demo`] is the auto-parts shop the demo and the tests use.

use copydesk::chatwoot::{
    AvailabilityStatus, ConversationPriority, ConversationStatus, MessageType,
};
use serde_json::{json, Map, Value};

/// An inbox. Chatwoot refuses `message_type: "incoming"` over the API unless the inbox is an
/// API channel (`Channel::Api`).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeInbox {
    /// Inbox id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `Channel::WebWidget`, `Channel::Api`, …
    pub channel_type: String,
}

/// A customer.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeContact {
    /// Contact id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone_number: Option<String>,
    /// Custom attributes (VIP flags live here).
    pub custom_attributes: Map<String, Value>,
}

/// An agent (a Chatwoot user of the account).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeAgent {
    /// User id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// `agent` or `administrator`.
    pub role: String,
    /// Effective availability.
    pub availability_status: AvailabilityStatus,
}

/// A team and its members.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeTeam {
    /// Team id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Member agent ids.
    pub members: Vec<i64>,
}

/// Who wrote a stored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeSender {
    /// The conversation's contact.
    Contact(i64),
    /// An agent (the token's user for API calls).
    User(i64),
}

/// A message as the fake stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeMessage {
    /// Message id (increasing across the account).
    pub id: i64,
    /// Conversation display id.
    pub conversation_id: i64,
    /// The text.
    pub content: Option<String>,
    /// Incoming, outgoing, activity, template.
    pub message_type: MessageType,
    /// Private note.
    pub private: bool,
    /// `source_id` as given.
    pub source_id: Option<String>,
    /// `text`, …
    pub content_type: String,
    /// Content attributes as given.
    pub content_attributes: Map<String, Value>,
    /// Who wrote it.
    pub sender: FakeSender,
    /// Unix seconds, strictly increasing.
    pub created_at: i64,
}

/// A conversation to seed or add. `messages` are from the contact unless marked outgoing.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeConversation {
    /// Display id (the id in URLs).
    pub id: i64,
    /// Inbox id.
    pub inbox_id: i64,
    /// Contact id.
    pub contact_id: i64,
    /// Status.
    pub status: ConversationStatus,
    /// Priority.
    pub priority: Option<ConversationPriority>,
    /// Assigned agent.
    pub assignee_id: Option<i64>,
    /// Assigned team.
    pub team_id: Option<i64>,
    /// Custom attributes.
    pub custom_attributes: Map<String, Value>,
    /// Labels.
    pub labels: Vec<String>,
    /// Snooze end (Unix seconds), when snoozed with a time.
    pub snoozed_until: Option<i64>,
    /// Messages, oldest first.
    pub messages: Vec<FakeMessage>,
    /// Unix seconds.
    pub created_at: i64,
}

impl FakeConversation {
    /// An open conversation with no messages yet (add them with
    /// [`super::FakeChatwoot::add_incoming_message`]).
    pub fn new(id: i64, inbox_id: i64, contact_id: i64) -> Self {
        Self {
            id,
            inbox_id,
            contact_id,
            status: ConversationStatus::Open,
            priority: None,
            assignee_id: None,
            team_id: None,
            custom_attributes: Map::new(),
            labels: Vec::new(),
            snoozed_until: None,
            messages: Vec::new(),
            created_at: 0,
        }
    }
}

/// A conversation in a [`Seed`] with the texts its contact wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedConversation {
    /// The conversation (its `messages` are ignored; see `customer_messages`).
    pub conversation: FakeConversation,
    /// What the customer wrote, oldest first.
    pub customer_messages: Vec<String>,
}

/// The fake's initial state.
#[derive(Debug, Clone, PartialEq)]
pub struct Seed {
    /// The only account.
    pub account_id: i64,
    /// The `api_access_token` the fake accepts.
    pub token: String,
    /// The agent the token belongs to (sender of API-created outgoing messages).
    pub token_user_id: i64,
    /// Inboxes.
    pub inboxes: Vec<FakeInbox>,
    /// Contacts.
    pub contacts: Vec<FakeContact>,
    /// Agents.
    pub agents: Vec<FakeAgent>,
    /// Teams.
    pub teams: Vec<FakeTeam>,
    /// Conversations.
    pub conversations: Vec<SeedConversation>,
}

/// The demo's web inbox.
pub const DEMO_WEB_INBOX: i64 = 1;
/// The demo's API inbox (accepts `"incoming"` messages over the API).
pub const DEMO_API_INBOX: i64 = 2;

impl Seed {
    /// An account with one web inbox, one API inbox and nothing else.
    pub fn empty() -> Self {
        Self {
            account_id: 1,
            token: "fake-chatwoot-token".into(),
            token_user_id: 1,
            inboxes: vec![
                FakeInbox {
                    id: DEMO_WEB_INBOX,
                    name: "Website".into(),
                    channel_type: "Channel::WebWidget".into(),
                },
                FakeInbox {
                    id: DEMO_API_INBOX,
                    name: "API".into(),
                    channel_type: "Channel::Api".into(),
                },
            ],
            contacts: Vec::new(),
            agents: vec![agent(
                1,
                "Copydesk Bot",
                "administrator",
                AvailabilityStatus::Online,
            )],
            teams: Vec::new(),
            conversations: Vec::new(),
        }
    }

    /// The demo: an auto-parts shop selling AN fittings. Conversations 101 (AN-6 size
    /// question), 102 (leaking fittings) and 103 (1500 HP fuel system), agents online and
    /// offline, and the teams "Order Support", "Product Q&A", "Managers", "Senior Operators",
    /// "Safety".
    pub fn demo() -> Self {
        use AvailabilityStatus::{Busy, Offline, Online};
        let mut seed = Self::empty();
        seed.agents.extend([
            agent(2, "Maria Lopez", "agent", Online),
            agent(3, "Dave Kim", "agent", Online),
            agent(4, "Priya Shah", "agent", Busy),
            agent(5, "Tom Becker", "administrator", Online),
            agent(6, "Sam Ortiz", "agent", Offline),
            agent(7, "Lena Novak", "agent", Offline),
        ]);
        let team = |id, name: &str, description: &str, members: Vec<i64>| FakeTeam {
            id,
            name: name.into(),
            description: description.into(),
            members,
        };
        seed.teams = vec![
            team(1, "Order Support", "Orders, shipping, returns", vec![2, 6]),
            team(
                2,
                "Product Q&A",
                "Fitting sizes, compatibility, how-to",
                vec![2, 3],
            ),
            team(3, "Managers", "Escalations and VIP customers", vec![5]),
            team(
                4,
                "Senior Operators",
                "Complex builds and high-power fuel systems",
                vec![3, 4],
            ),
            team(
                5,
                "Safety",
                "Leaks, fire risk, anything dangerous",
                vec![4, 5, 7],
            ),
        ];
        seed.contacts = vec![
            contact(11, "Jane Doe", "jane@example.com", json!({})),
            contact(12, "Rob Miller", "rob@example.com", json!({})),
            contact(
                13,
                "Alex Turner",
                "alex@example.com",
                json!({"vip": true, "lifetime_value": 48000}),
            ),
        ];
        let conversation = |id, contact_id, text: &str| SeedConversation {
            conversation: FakeConversation::new(id, DEMO_WEB_INBOX, contact_id),
            customer_messages: vec![text.into()],
        };
        seed.conversations = vec![
            conversation(101, 11, "What does AN-6 mean in inches?"),
            conversation(102, 12, "My AN fittings are leaking at the carburetor."),
            conversation(
                103,
                13,
                "Need fuel system design for 1500 HP twin turbo on E85.",
            ),
        ];
        seed
    }
}

fn agent(id: i64, name: &str, role: &str, availability_status: AvailabilityStatus) -> FakeAgent {
    let email = format!(
        "{}@parts.example.com",
        name.split(' ').next().unwrap_or(name).to_lowercase()
    );
    FakeAgent {
        id,
        name: name.into(),
        email,
        role: role.into(),
        availability_status,
    }
}

fn contact(id: i64, name: &str, email: &str, custom_attributes: Value) -> FakeContact {
    FakeContact {
        id,
        name: name.into(),
        email: Some(email.into()),
        phone_number: None,
        custom_attributes: match custom_attributes {
            Value::Object(map) => map,
            _ => Map::new(),
        },
    }
}
