//! The fake's in-memory account and what each route does to it, answering with the JSON
//! shapes of Chatwoot v4.16.2 (spec schemas `message`, `conversation_show`, `agent`, `team`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use copydesk::chatwoot::{ConversationPriority, ConversationStatus, MessageType};
use serde_json::{json, Map, Value};

use super::routes::{Endpoint, Route};
use super::seed::{
    FakeAgent, FakeContact, FakeConversation, FakeInbox, FakeMessage, FakeSender, FakeTeam, Seed,
};

/// Longest message Chatwoot stores (`validates :content, length: { maximum: 150_000 }`).
const MAX_CONTENT_CHARS: usize = 150_000;

/// `content_type` values Chatwoot's `Message` enum knows.
const CONTENT_TYPES: &[&str] = &[
    "text",
    "input_text",
    "input_textarea",
    "input_email",
    "input_select",
    "cards",
    "form",
    "article",
    "incoming_email",
    "input_csat",
    "integrations",
    "sticker",
    "voice_call",
];

/// Conversations per page (`CONVERSATION_RESULTS_PER_PAGE`).
const CONVERSATIONS_PER_PAGE: usize = 25;

/// Ruby on Rails' false values for a boolean parameter.
const RAILS_FALSE: &[&str] = &["", "0", "f", "F", "false", "FALSE", "off", "OFF"];

/// A status code and an optional JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Option<Value>,
}

impl Answer {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
        }
    }

    fn empty_ok() -> Self {
        Self {
            status: 200,
            body: None,
        }
    }

    /// `ActiveRecord::RecordNotFound`, as Chatwoot renders it.
    pub(crate) fn not_found() -> Self {
        Self::json(404, json!({"error": "Resource could not be found"}))
    }

    /// `render_could_not_create_error`.
    fn unprocessable(message: impl Into<String>) -> Self {
        Self::json(422, json!({"error": message.into()}))
    }

    /// An unhandled exception (e.g. an invalid enum value): Rails' generic 500.
    pub(crate) fn internal_error() -> Self {
        Self::json(
            500,
            json!({"status": 500, "error": "Internal Server Error"}),
        )
    }
}

/// The account's state.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) account_id: i64,
    pub(crate) token_user_id: i64,
    inboxes: BTreeMap<i64, FakeInbox>,
    pub(crate) contacts: BTreeMap<i64, FakeContact>,
    pub(crate) agents: BTreeMap<i64, FakeAgent>,
    teams: BTreeMap<i64, FakeTeam>,
    pub(crate) conversations: BTreeMap<i64, FakeConversation>,
    next_message_id: i64,
    last_created_at: i64,
    /// Dashboard Apps created through the API.
    pub(crate) dashboard_apps: Vec<Value>,
}

impl Store {
    pub(crate) fn from_seed(seed: &Seed) -> Self {
        let mut store = Self {
            account_id: seed.account_id,
            token_user_id: seed.token_user_id,
            inboxes: seed.inboxes.iter().map(|i| (i.id, i.clone())).collect(),
            contacts: seed.contacts.iter().map(|c| (c.id, c.clone())).collect(),
            agents: seed.agents.iter().map(|a| (a.id, a.clone())).collect(),
            teams: seed.teams.iter().map(|t| (t.id, t.clone())).collect(),
            conversations: BTreeMap::new(),
            next_message_id: 1000,
            last_created_at: 0,
            dashboard_apps: Vec::new(),
        };
        for seeded in &seed.conversations {
            store.add_conversation(seeded.conversation.clone());
            for text in &seeded.customer_messages {
                store.add_contact_message(seeded.conversation.id, text);
            }
        }
        store
    }

    /// Adds (or replaces) a conversation; its `created_at` is set when zero.
    pub(crate) fn add_conversation(&mut self, mut conversation: FakeConversation) {
        if conversation.created_at == 0 {
            conversation.created_at = self.tick();
        }
        self.conversations.insert(conversation.id, conversation);
    }

    /// Adds a message from the conversation's contact, as a customer writing in the widget.
    pub(crate) fn add_contact_message(
        &mut self,
        conversation_id: i64,
        content: &str,
    ) -> Option<FakeMessage> {
        let contact_id = self.conversations.get(&conversation_id)?.contact_id;
        let draft = Draft {
            content: Some(content.to_owned()),
            message_type: MessageType::Incoming,
            private: false,
            sender: FakeSender::Contact(contact_id),
            source_id: None,
            content_type: "text".into(),
            content_attributes: Map::new(),
        };
        self.push_message(conversation_id, draft)
    }

    /// Adds a message from the conversation's contact written at `created_at` (Unix
    /// seconds; e.g. hours ago, for messages older than a look-back window).
    pub(crate) fn add_contact_message_at(
        &mut self,
        conversation_id: i64,
        content: &str,
        created_at: i64,
    ) -> Option<FakeMessage> {
        let mut message = self.add_contact_message(conversation_id, content)?;
        let conversation = self.conversations.get_mut(&conversation_id)?;
        let stored = conversation.messages.last_mut()?;
        stored.created_at = created_at;
        message.created_at = created_at;
        Some(message)
    }

    /// Strictly increasing Unix seconds: wall clock, or one more than the last.
    fn tick(&mut self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.last_created_at = now.max(self.last_created_at + 1);
        self.last_created_at
    }

    fn push_message(&mut self, conversation_id: i64, draft: Draft) -> Option<FakeMessage> {
        let created_at = self.tick();
        self.next_message_id += 1;
        let conversation = self.conversations.get_mut(&conversation_id)?;
        let message = FakeMessage {
            id: self.next_message_id,
            conversation_id,
            content: draft.content,
            message_type: draft.message_type,
            private: draft.private,
            source_id: draft.source_id,
            content_type: draft.content_type,
            content_attributes: draft.content_attributes,
            sender: draft.sender,
            created_at,
        };
        // Message#reopen_conversation: a customer message reopens resolved and snoozed ones.
        if message.message_type == MessageType::Incoming
            && matches!(
                conversation.status,
                ConversationStatus::Resolved | ConversationStatus::Snoozed
            )
        {
            conversation.status = ConversationStatus::Open;
            conversation.snoozed_until = None;
        }
        conversation.messages.push(message.clone());
        Some(message)
    }

    /// Runs an authenticated request for this account.
    pub(crate) fn handle(&mut self, route: Route, params: &Map<String, Value>) -> Answer {
        let id = route.id.unwrap_or(0);
        match route.endpoint {
            Endpoint::Profile => super::profiles::profile(self, self.token_user_id),
            Endpoint::ListDashboardApps => super::profiles::list_dashboard_apps(self),
            Endpoint::CreateDashboardApp => {
                super::profiles::create_dashboard_app(self, self.token_user_id, params)
            }
            Endpoint::ListAgents => Answer::json(
                200,
                Value::Array(self.agents.values().map(|a| self.agent_json(a)).collect()),
            ),
            Endpoint::ListTeams => Answer::json(
                200,
                Value::Array(self.teams.values().map(|t| self.team_json(t)).collect()),
            ),
            Endpoint::ListTeamMembers => match self.teams.get(&id) {
                None => Answer::not_found(),
                Some(team) => Answer::json(
                    200,
                    Value::Array(
                        team.members
                            .iter()
                            .filter_map(|m| self.agents.get(m))
                            .map(|a| self.agent_json(a))
                            .collect(),
                    ),
                ),
            },
            Endpoint::ListConversations => self.list_conversations(params),
            _ if !self.conversations.contains_key(&id) => Answer::not_found(),
            Endpoint::GetConversation => Answer::json(200, self.conversation_json(id)),
            Endpoint::UpdateConversation => self.update_conversation(id, params),
            Endpoint::ListMessages => self.list_messages(id, params),
            Endpoint::CreateMessage => self.create_message(id, params),
            Endpoint::ToggleStatus => self.toggle_status(id, params),
            Endpoint::TogglePriority => self.toggle_priority(id, params),
            Endpoint::Assign => self.assign(id, params),
        }
    }

    fn create_message(&mut self, id: i64, params: &Map<String, Value>) -> Answer {
        let Some(conversation) = self.conversations.get(&id) else {
            return Answer::not_found();
        };
        let api_inbox = self
            .inboxes
            .get(&conversation.inbox_id)
            .is_some_and(|i| i.channel_type == "Channel::Api");
        let contact = FakeSender::Contact(conversation.contact_id);
        let user = FakeSender::User(self.token_user_id);
        // MessageBuilder: `params[:message_type] || 'outgoing'`; the API-inbox check compares
        // with the string 'incoming' only, so integer 0 slips through as an incoming message;
        // the sender is the user only for the string 'outgoing'.
        let (message_type, sender) = match params.get("message_type") {
            None | Some(Value::Null) => (MessageType::Outgoing, user),
            Some(Value::String(name)) => match MessageType::from_name(name) {
                Some(MessageType::Incoming) if !api_inbox => {
                    return Answer::unprocessable(
                        "Incoming messages are only allowed in Api inboxes",
                    )
                }
                Some(MessageType::Outgoing) => (MessageType::Outgoing, user),
                Some(other) => (other, contact),
                None => {
                    return Answer::unprocessable(format!("'{name}' is not a valid message_type"))
                }
            },
            Some(Value::Number(n)) => match n.as_u64().and_then(MessageType::from_code) {
                Some(t) => (t, contact),
                None => return Answer::unprocessable(format!("'{n}' is not a valid message_type")),
            },
            Some(other) => {
                return Answer::unprocessable(format!("'{other}' is not a valid message_type"))
            }
        };
        let content = match params.get("content") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Answer::unprocessable("Content can't be blank"),
        };
        if content.chars().count() > MAX_CONTENT_CHARS {
            return Answer::unprocessable(
                "Validation failed: Content is too long (maximum is 150000 characters)",
            );
        }
        let content_type = match params.get("content_type") {
            None | Some(Value::Null) => "text".to_owned(),
            Some(Value::String(t)) if CONTENT_TYPES.contains(&t.as_str()) => t.clone(),
            Some(other) => {
                return Answer::unprocessable(format!("{other} is not a valid content_type"))
            }
        };
        let content_attributes = match params.get("content_attributes") {
            Some(Value::Object(map)) => map.clone(),
            Some(Value::String(s)) => {
                serde_json::from_str::<Map<String, Value>>(s).unwrap_or_default()
            }
            _ => Map::new(),
        };
        let source_id = match params.get("source_id") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let draft = Draft {
            content: Some(content),
            message_type,
            private: rails_bool(params.get("private")),
            sender,
            source_id,
            content_type,
            content_attributes,
        };
        match self.push_message(id, draft) {
            Some(message) => Answer::json(200, self.message_json(&message)),
            None => Answer::not_found(),
        }
    }

    fn list_messages(&self, id: i64, params: &Map<String, Value>) -> Answer {
        let Some(conversation) = self.conversations.get(&id) else {
            return Answer::not_found();
        };
        let all = &conversation.messages;
        let (after, before) = (
            int_param(params.get("after")),
            int_param(params.get("before")),
        );
        let page: Vec<&FakeMessage> = match (after, before) {
            (Some(a), Some(b)) => all
                .iter()
                .filter(|m| m.id >= a && m.id < b)
                .take(1000)
                .collect(),
            (None, Some(b)) => last_n(all.iter().filter(|m| m.id < b), 20),
            (Some(a), None) => all.iter().filter(|m| m.id > a).take(100).collect(),
            (None, None) => last_n(all.iter(), 20),
        };
        let contact = self
            .contacts
            .get(&conversation.contact_id)
            .map(contact_json);
        let assignee = conversation
            .assignee_id
            .and_then(|a| self.agents.get(&a))
            .map(|a| self.agent_json(a));
        Answer::json(
            200,
            json!({
                "meta": {
                    "labels": conversation.labels,
                    "additional_attributes": {},
                    "contact": contact,
                    "assignee": assignee,
                    "agent_last_seen_at": null,
                    "assignee_last_seen_at": null,
                },
                "payload": page.into_iter().map(|m| self.message_json(m)).collect::<Vec<_>>(),
            }),
        )
    }

    /// `ConversationFinder`: filters by `status` (default `open`; `all`) and `assignee_type`
    /// (default `all`), most recent activity first, 25 per page. An unknown `status` matches
    /// nothing, as in Rails (`where(status: 'x')`); an unknown `assignee_type` lists all.
    fn list_conversations(&self, params: &Map<String, Value>) -> Answer {
        let status = params
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("open")
            .to_owned();
        let assignee_type = params
            .get("assignee_type")
            .and_then(Value::as_str)
            .unwrap_or("all")
            .to_owned();
        let page = int_param(params.get("page")).unwrap_or(1).max(1) as usize;
        let activity =
            |c: &FakeConversation| c.messages.last().map_or(c.created_at, |m| m.created_at);
        let with_status: Vec<&FakeConversation> = self
            .conversations
            .values()
            .filter(|c| status == "all" || c.status.as_str() == status)
            .collect();
        let me = self.token_user_id;
        let count =
            |f: &dyn Fn(&&FakeConversation) -> bool| with_status.iter().filter(|c| f(c)).count();
        let meta = json!({
            "mine_count": count(&|c| c.assignee_id == Some(me)),
            "assigned_count": count(&|c| c.assignee_id.is_some()),
            "unassigned_count": count(&|c| c.assignee_id.is_none()),
            "all_count": with_status.len(),
        });
        let mut listed: Vec<&FakeConversation> = with_status
            .into_iter()
            .filter(|c| match assignee_type.as_str() {
                "me" => c.assignee_id == Some(me),
                "unassigned" => c.assignee_id.is_none(),
                "assigned" => c.assignee_id.is_some(),
                _ => true,
            })
            .collect();
        listed.sort_by_key(|c| (std::cmp::Reverse(activity(c)), std::cmp::Reverse(c.id)));
        let payload: Vec<Value> = listed
            .into_iter()
            .skip((page - 1) * CONVERSATIONS_PER_PAGE)
            .take(CONVERSATIONS_PER_PAGE)
            .map(|c| self.conversation_json(c.id))
            .collect();
        Answer::json(200, json!({"data": {"meta": meta, "payload": payload}}))
    }

    fn update_conversation(&mut self, id: i64, params: &Map<String, Value>) -> Answer {
        // `params.permit(:priority)`: status and everything else are ignored.
        if let Some(raw) = params.get("priority") {
            match priority_param(raw) {
                Ok(priority) => {
                    if let Some(c) = self.conversations.get_mut(&id) {
                        c.priority = priority;
                    }
                }
                Err(()) => return Answer::internal_error(),
            }
        }
        Answer::json(200, self.conversation_json(id))
    }

    fn toggle_status(&mut self, id: i64, params: &Map<String, Value>) -> Answer {
        let Some(conversation) = self.conversations.get_mut(&id) else {
            return Answer::not_found();
        };
        let status = match params.get("status") {
            None | Some(Value::Null) => match conversation.status {
                ConversationStatus::Open => ConversationStatus::Resolved,
                _ => ConversationStatus::Open,
            },
            Some(Value::String(s)) => match s.as_str() {
                "open" => ConversationStatus::Open,
                "resolved" => ConversationStatus::Resolved,
                "pending" => ConversationStatus::Pending,
                "snoozed" => ConversationStatus::Snoozed,
                // An invalid enum value raises ArgumentError, which nothing rescues.
                _ => return Answer::internal_error(),
            },
            Some(_) => return Answer::internal_error(),
        };
        conversation.status = status;
        conversation.snoozed_until = match status {
            ConversationStatus::Snoozed => int_param(params.get("snoozed_until")),
            _ => None,
        };
        Answer::json(
            200,
            json!({"meta": {}, "payload": {"success": true, "current_status": status.as_str(), "conversation_id": id}}),
        )
    }

    fn toggle_priority(&mut self, id: i64, params: &Map<String, Value>) -> Answer {
        // `toggle_priority(params[:priority])` sets `priority.presence`; only the enum's
        // values or nothing are valid — "none" (listed in the spec) raises → 500.
        match priority_param(params.get("priority").unwrap_or(&Value::Null)) {
            Ok(priority) => {
                if let Some(c) = self.conversations.get_mut(&id) {
                    c.priority = priority;
                }
                Answer::empty_ok()
            }
            Err(()) => Answer::internal_error(),
        }
    }

    fn assign(&mut self, id: i64, params: &Map<String, Value>) -> Answer {
        if params.contains_key("assignee_id") {
            // `account.users.find_by(id:)`: an unknown id finds nobody and unassigns.
            let agent =
                int_param(params.get("assignee_id")).filter(|a| self.agents.contains_key(a));
            if let Some(c) = self.conversations.get_mut(&id) {
                c.assignee_id = agent;
            }
            let body = agent
                .and_then(|a| self.agents.get(&a))
                .map_or(Value::Null, |a| self.agent_json(a));
            return Answer::json(200, body);
        }
        if params.contains_key("team_id") {
            let team = int_param(params.get("team_id")).filter(|t| self.teams.contains_key(t));
            let members = team
                .and_then(|t| self.teams.get(&t))
                .map(|t| t.members.clone());
            if let Some(c) = self.conversations.get_mut(&id) {
                if c.team_id != team {
                    // AssignmentHandler#validate_current_assignee_team
                    if let (Some(members), Some(assignee)) = (&members, c.assignee_id) {
                        if !members.contains(&assignee) {
                            c.assignee_id = None;
                        }
                    }
                    c.team_id = team;
                }
            }
            let body = team
                .and_then(|t| self.teams.get(&t))
                .map_or(Value::Null, |t| self.team_json(t));
            return Answer::json(200, body);
        }
        Answer::json(200, Value::Null)
    }

    fn agent_json(&self, agent: &FakeAgent) -> Value {
        json!({
            "id": agent.id,
            "account_id": self.account_id,
            "availability_status": agent.availability_status.as_str(),
            "auto_offline": true,
            "confirmed": true,
            "email": agent.email,
            "available_name": agent.name,
            "name": agent.name,
            "role": agent.role,
            "thumbnail": "",
            "custom_role_id": null,
        })
    }

    fn team_json(&self, team: &FakeTeam) -> Value {
        json!({
            "id": team.id,
            "name": team.name,
            "description": team.description,
            "allow_auto_assign": false,
            "account_id": self.account_id,
            "is_member": team.members.contains(&self.token_user_id),
        })
    }

    fn sender_json(&self, sender: FakeSender) -> Value {
        match sender {
            FakeSender::Contact(id) => self.contacts.get(&id).map_or(Value::Null, |c| {
                let mut v = contact_json(c);
                v["type"] = json!("contact");
                v
            }),
            FakeSender::User(id) => self.agents.get(&id).map_or(Value::Null, |a| {
                json!({
                    "id": a.id, "name": a.name, "available_name": a.name, "avatar_url": "",
                    "type": "user", "availability_status": a.availability_status.as_str(), "thumbnail": "",
                })
            }),
        }
    }

    pub(crate) fn message_json(&self, message: &FakeMessage) -> Value {
        let conversation = self.conversations.get(&message.conversation_id);
        let (sender_type, sender_id) = match message.sender {
            FakeSender::Contact(id) => ("Contact", id),
            FakeSender::User(id) => ("User", id),
        };
        json!({
            "id": message.id,
            "content": message.content,
            "account_id": self.account_id,
            "inbox_id": conversation.map(|c| c.inbox_id),
            "conversation_id": message.conversation_id,
            "message_type": message.message_type.code(),
            "created_at": message.created_at,
            "updated_at": message.created_at,
            "private": message.private,
            "status": "sent",
            "source_id": message.source_id,
            "content_type": message.content_type,
            "content_attributes": message.content_attributes,
            "sender_type": sender_type,
            "sender_id": sender_id,
            "external_source_ids": {},
            "additional_attributes": {},
            "processed_message_content": message.content,
            "sentiment": {},
            "conversation": conversation.map(|c| json!({
                "assignee_id": c.assignee_id,
                "unread_count": 0,
                "last_activity_at": c.messages.last().map_or(c.created_at, |m| m.created_at),
                "contact_inbox": {"source_id": format!("contact-{}", c.contact_id)},
            })),
            "sender": self.sender_json(message.sender),
        })
    }

    fn conversation_json(&self, id: i64) -> Value {
        let Some(c) = self.conversations.get(&id) else {
            return Value::Null;
        };
        let last = c.messages.last();
        let last_activity_at = last.map_or(c.created_at, |m| m.created_at);
        let waiting_since = c
            .messages
            .iter()
            .rev()
            .take_while(|m| m.message_type != MessageType::Outgoing || m.private)
            .filter(|m| m.message_type == MessageType::Incoming)
            .last()
            .map(|m| m.created_at);
        let channel = self
            .inboxes
            .get(&c.inbox_id)
            .map(|i| i.channel_type.clone());
        json!({
            "meta": {
                "sender": self.contacts.get(&c.contact_id).map(contact_json),
                "channel": channel,
                "assignee": c.assignee_id.and_then(|a| self.agents.get(&a)).map(|a| self.agent_json(a)),
                "team": c.team_id.and_then(|t| self.teams.get(&t)).map(|t| self.team_json(t)),
                "hmac_verified": false,
            },
            "id": c.id,
            "messages": last.map(|m| vec![self.message_json(m)]).unwrap_or_default(),
            "account_id": self.account_id,
            "uuid": format!("00000000-0000-4000-8000-{:012}", c.id),
            "additional_attributes": {},
            "agent_last_seen_at": 0,
            "assignee_last_seen_at": 0,
            "can_reply": true,
            "contact_last_seen_at": 0,
            "custom_attributes": c.custom_attributes,
            "inbox_id": c.inbox_id,
            "labels": c.labels,
            "muted": false,
            "snoozed_until": c.snoozed_until,
            "status": c.status.as_str(),
            "created_at": c.created_at,
            "updated_at": last_activity_at,
            "timestamp": last_activity_at,
            "first_reply_created_at": c.messages.iter()
                .find(|m| m.message_type == MessageType::Outgoing && !m.private)
                .map(|m| m.created_at),
            "unread_count": 0,
            "last_non_activity_message": last.map(|m| self.message_json(m)),
            "last_activity_at": last_activity_at,
            "priority": c.priority.map(ConversationPriority::as_str),
            "waiting_since": waiting_since,
            "sla_policy_id": null,
            "applied_sla": null,
            "sla_events": [],
        })
    }
}

/// A message before it gets its id and time.
#[derive(Debug)]
struct Draft {
    content: Option<String>,
    message_type: MessageType,
    private: bool,
    sender: FakeSender,
    source_id: Option<String>,
    content_type: String,
    content_attributes: Map<String, Value>,
}

fn contact_json(c: &FakeContact) -> Value {
    json!({
        "additional_attributes": {},
        "availability_status": "offline",
        "email": c.email,
        "id": c.id,
        "name": c.name,
        "phone_number": c.phone_number,
        "blocked": false,
        "identifier": null,
        "thumbnail": "",
        "custom_attributes": c.custom_attributes,
        "last_activity_at": null,
        "created_at": null,
    })
}

fn last_n<'a>(
    messages: impl DoubleEndedIterator<Item = &'a FakeMessage>,
    n: usize,
) -> Vec<&'a FakeMessage> {
    let mut page: Vec<_> = messages.rev().take(n).collect();
    page.reverse();
    page
}

/// An integer parameter, given as a JSON number or a numeric string (query parameters).
fn int_param(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Rails' boolean cast, with `params[:private] || false`.
fn rails_bool(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !RAILS_FALSE.contains(&s.as_str()),
        Some(_) => true,
    }
}

/// `priority.presence` against the enum `urgent|high|medium|low`; anything else is an error.
fn priority_param(value: &Value) -> Result<Option<ConversationPriority>, ()> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => match s.as_str() {
            "urgent" => Ok(Some(ConversationPriority::Urgent)),
            "high" => Ok(Some(ConversationPriority::High)),
            "medium" => Ok(Some(ConversationPriority::Medium)),
            "low" => Ok(Some(ConversationPriority::Low)),
            _ => Err(()),
        },
        _ => Err(()),
    }
}
