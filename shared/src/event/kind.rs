//! The fixed list of Chatwoot webhook event names Copydesk knows.
//!
//! Metric labels and logs take an event name only from this list, so a request can never
//! put an attacker-chosen string into a label.

/// A Chatwoot webhook event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `contact_created`
    ContactCreated,
    /// `contact_updated`
    ContactUpdated,
    /// `conversation_created`
    ConversationCreated,
    /// `conversation_updated`
    ConversationUpdated,
    /// `conversation_status_changed`
    ConversationStatusChanged,
    /// `conversation_typing_on`
    ConversationTypingOn,
    /// `conversation_typing_off`
    ConversationTypingOff,
    /// `message_created`
    MessageCreated,
    /// `message_updated`
    MessageUpdated,
    /// `webwidget_triggered`
    WebwidgetTriggered,
}

impl EventKind {
    /// Every known event.
    pub const ALL: [EventKind; 10] = [
        Self::ContactCreated,
        Self::ContactUpdated,
        Self::ConversationCreated,
        Self::ConversationUpdated,
        Self::ConversationStatusChanged,
        Self::ConversationTypingOn,
        Self::ConversationTypingOff,
        Self::MessageCreated,
        Self::MessageUpdated,
        Self::WebwidgetTriggered,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContactCreated => "contact_created",
            Self::ContactUpdated => "contact_updated",
            Self::ConversationCreated => "conversation_created",
            Self::ConversationUpdated => "conversation_updated",
            Self::ConversationStatusChanged => "conversation_status_changed",
            Self::ConversationTypingOn => "conversation_typing_on",
            Self::ConversationTypingOff => "conversation_typing_off",
            Self::MessageCreated => "message_created",
            Self::MessageUpdated => "message_updated",
            Self::WebwidgetTriggered => "webwidget_triggered",
        }
    }

    /// The kind named `name`, if known.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
