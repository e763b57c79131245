//! `ConversationState`: one conversation's lifecycle as a state machine that the wiring loads
//! from Redis (JSON), feeds one event with [`ConversationState::apply`], and stores back.
//!
//! Replays are harmless: an event id seen recently is ignored, message events are keyed by
//! their message id (Chatwoot repeats them with new delivery ids), status and priority changes
//! older than the ones already applied are ignored, and every metric is guarded by a per-episode
//! fact (first reply time set, resolution time set, breach counted) so it is emitted once.

use std::collections::VecDeque;
use std::time::Duration;

use copydesk::domain::Priority;
use copydesk::jobs::{ConversationChange, TrackConversation};
use serde::{Deserialize, Serialize};

use super::effects::{LifecycleEffect, SlaKind};
use super::policy::LifecyclePolicy;

/// How many recent event ids a conversation remembers for replay detection.
pub const RECENT_EVENTS: usize = 64;

/// Chatwoot's conversation status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the team.
    #[default]
    Open,
    /// Handled by a bot, not yet handed to agents.
    Pending,
    /// Put aside until a time or the customer's next message.
    Snoozed,
    /// Done; the customer's next message reopens it.
    Resolved,
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(Self::Open),
            "pending" => Ok(Self::Pending),
            "snoozed" => Ok(Self::Snoozed),
            "resolved" => Ok(Self::Resolved),
            other => Err(format!(
                "unknown conversation status {other:?} (open, pending, snoozed, resolved)"
            )),
        }
    }
}

/// One episode: from a customer's first message (of a new conversation, or after a
/// resolution) to the resolution. Times are Unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Episode {
    /// 1 for the conversation's first episode, +1 per reopen.
    pub number: u32,
    /// The episode's first customer message.
    pub first_customer_message_at_ms: Option<i64>,
    /// The episode's first public reply (human, or an approved Copydesk draft).
    pub first_reply_at_ms: Option<i64>,
    /// When the episode was resolved.
    pub resolved_at_ms: Option<i64>,
    /// A first response breach was counted.
    pub first_response_breached: bool,
    /// A resolution breach was counted.
    pub resolution_breached: bool,
}

/// The customer's CSAT answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Csat {
    /// Rating 1..=5.
    pub rating: i64,
    /// Free text, if any.
    pub feedback: Option<String>,
    /// When it was given (Unix ms).
    pub at_ms: i64,
}

/// One conversation's lifecycle. Store it as JSON; unknown or missing fields take defaults so
/// the format can grow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConversationState {
    /// Current Chatwoot status.
    pub status: Status,
    /// When the status was last set (older status events are ignored).
    pub status_at_ms: i64,
    /// Current priority (labels the metrics).
    pub priority: Priority,
    /// When the priority was last set (older priority changes are ignored).
    pub priority_at_ms: i64,
    /// Current assignee, as last reported.
    pub assignee_id: Option<i64>,
    /// When Chatwoot created the conversation, if we saw it.
    pub created_at_ms: Option<i64>,
    /// The current episode.
    pub episode: Episode,
    /// How often a customer message reopened a resolved conversation.
    pub reopen_count: u32,
    /// Since when the conversation has been resolved without interruption (auto-close clock).
    pub resolved_since_ms: Option<i64>,
    /// The customer's latest CSAT answer.
    pub csat: Option<Csat>,
    /// When Copydesk closed (archived) the conversation; `None` while it is active. See the
    /// module docs for what "closed" means.
    pub closed_at_ms: Option<i64>,
    /// Recent event ids (replay detection), newest last.
    recent_events: VecDeque<String>,
}

impl Default for ConversationState {
    fn default() -> Self {
        Self {
            status: Status::Open,
            status_at_ms: 0,
            priority: Priority::Normal,
            priority_at_ms: 0,
            assignee_id: None,
            created_at_ms: None,
            episode: Episode {
                number: 1,
                ..Episode::default()
            },
            reopen_count: 0,
            resolved_since_ms: None,
            csat: None,
            closed_at_ms: None,
            recent_events: VecDeque::new(),
        }
    }
}

impl ConversationState {
    /// A conversation we know nothing about yet: open, normal priority, episode 1 not started.
    pub fn new() -> Self {
        Self::default()
    }

    /// True while the conversation is snoozed.
    pub fn is_snoozed(&self) -> bool {
        self.status == Status::Snoozed
    }

    /// True once Copydesk closed (archived) it.
    pub fn is_closed(&self) -> bool {
        self.closed_at_ms.is_some()
    }

    /// Applies a `track_conversation` job: its delivery id is the event id.
    pub fn apply_job(
        &mut self,
        job: &TrackConversation,
        now_ms: i64,
        policy: &LifecyclePolicy,
    ) -> Vec<LifecycleEffect> {
        self.apply(
            job.meta.delivery_id.as_str(),
            &job.change,
            job.occurred_at_ms,
            now_ms,
            policy,
        )
    }

    /// Applies one event that happened at `at_ms` (Unix ms, as Chatwoot reported it) and
    /// returns what follows from it. `event_id` identifies the event for replay detection
    /// (message events use their message id instead); `now_ms` is the clock for sweeps.
    pub fn apply(
        &mut self,
        event_id: &str,
        change: &ConversationChange,
        at_ms: i64,
        now_ms: i64,
        policy: &LifecyclePolicy,
    ) -> Vec<LifecycleEffect> {
        if self.episode.number == 0 {
            self.episode.number = 1;
        }
        let key = match change {
            ConversationChange::CustomerMessage { message_id }
            | ConversationChange::AgentReply { message_id, .. } => format!("message:{message_id}"),
            // A sweep is not an event: every run must look at the clock again.
            ConversationChange::AutoCloseSweep => String::new(),
            _ => format!("event:{event_id}"),
        };
        if !key.is_empty() {
            if self.recent_events.contains(&key) {
                return Vec::new();
            }
            self.recent_events.push_back(key);
            while self.recent_events.len() > RECENT_EVENTS {
                self.recent_events.pop_front();
            }
        }

        let mut effects = Vec::new();
        match change {
            ConversationChange::Created { status } => {
                self.created_at_ms.get_or_insert(at_ms);
                if let Ok(status) = status.as_str().parse() {
                    self.set_status(status, at_ms, policy, &mut effects);
                }
            }
            ConversationChange::Updated {
                status,
                assignee_id,
                priority,
            } => {
                if at_ms >= self.priority_at_ms {
                    self.assignee_id = *assignee_id;
                    if let Some(priority) = priority.as_ref().and_then(|p| p.as_str().parse().ok())
                    {
                        self.priority = priority;
                        self.priority_at_ms = at_ms;
                    }
                }
                if let Ok(status) = status.as_str().parse() {
                    self.set_status(status, at_ms, policy, &mut effects);
                }
            }
            ConversationChange::StatusChanged { status } => {
                if let Ok(status) = status.as_str().parse() {
                    self.set_status(status, at_ms, policy, &mut effects);
                }
            }
            ConversationChange::CustomerMessage { .. } => {
                self.customer_message(at_ms, &mut effects);
            }
            ConversationChange::AgentReply { .. } => {
                self.agent_reply(at_ms, policy, &mut effects);
            }
            ConversationChange::CsatAnswered { rating, feedback } => {
                let same = self
                    .csat
                    .as_ref()
                    .is_some_and(|c| c.rating == *rating && c.feedback == *feedback);
                let newer = self.csat.as_ref().is_none_or(|c| at_ms >= c.at_ms);
                if (1..=5).contains(rating) && !same && newer {
                    self.csat = Some(Csat {
                        rating: *rating,
                        feedback: feedback.clone(),
                        at_ms,
                    });
                    effects.push(LifecycleEffect::CsatRecorded { rating: *rating });
                }
            }
            ConversationChange::AutoCloseSweep => {
                effects.extend(self.sweep(now_ms, policy));
            }
        }
        effects
    }

    /// The scheduled check: counts SLA breaches of an episode still waiting past its targets
    /// (so alerts fire before anyone replies), and closes the conversation when it has been
    /// resolved for `policy.auto_close_after`. Idempotent: a second sweep at the same time
    /// returns nothing.
    pub fn sweep(&mut self, now_ms: i64, policy: &LifecyclePolicy) -> Vec<LifecycleEffect> {
        let mut effects = Vec::new();
        if let Some(start) = self.episode.first_customer_message_at_ms {
            let waited = elapsed(start, now_ms);
            if self.episode.first_reply_at_ms.is_none()
                && self.episode.resolved_at_ms.is_none()
                && waited > policy.sla.first_response(self.priority)
            {
                self.breach(SlaKind::FirstResponse, &mut effects);
            }
            if self.episode.resolved_at_ms.is_none()
                && waited > policy.sla.resolution(self.priority)
            {
                self.breach(SlaKind::Resolution, &mut effects);
            }
        }
        if auto_close_due(self, now_ms, policy.auto_close_after) {
            self.closed_at_ms = Some(now_ms);
            effects.push(LifecycleEffect::Closed);
        }
        effects
    }

    fn set_status(
        &mut self,
        status: Status,
        at_ms: i64,
        policy: &LifecyclePolicy,
        effects: &mut Vec<LifecycleEffect>,
    ) {
        if at_ms < self.status_at_ms {
            return; // an older status than the one we hold: a late or replayed event
        }
        self.status = status;
        self.status_at_ms = at_ms;
        if status != Status::Resolved {
            // Active again (an agent reopened or snoozed it): the auto-close clock stops.
            self.resolved_since_ms = None;
            self.closed_at_ms = None;
            return;
        }
        self.resolved_since_ms.get_or_insert(at_ms);
        let Some(start) = self.episode.first_customer_message_at_ms else {
            return; // resolved before any customer message: nothing to measure
        };
        if self.episode.resolved_at_ms.is_some() || at_ms < start {
            return;
        }
        self.episode.resolved_at_ms = Some(at_ms);
        let took = elapsed(start, at_ms);
        effects.push(LifecycleEffect::Resolved {
            priority: self.priority,
            seconds: took.as_secs_f64(),
        });
        if took > policy.sla.resolution(self.priority) {
            self.breach(SlaKind::Resolution, effects);
        }
    }

    fn customer_message(&mut self, at_ms: i64, effects: &mut Vec<LifecycleEffect>) {
        let episode_over = self
            .episode
            .resolved_at_ms
            .or(self.resolved_since_ms)
            .or(self.closed_at_ms);
        if let Some(over_at) = episode_over {
            if at_ms <= over_at {
                return; // a late message from the finished episode
            }
            self.reopen_count += 1;
            self.episode = Episode {
                number: self.episode.number + 1,
                first_customer_message_at_ms: Some(at_ms),
                ..Episode::default()
            };
            self.status = Status::Open;
            self.status_at_ms = self.status_at_ms.max(at_ms);
            self.resolved_since_ms = None;
            self.closed_at_ms = None;
            effects.push(LifecycleEffect::Reopened {
                reopen_count: self.reopen_count,
            });
            return;
        }
        if self.status == Status::Snoozed && at_ms >= self.status_at_ms {
            // Chatwoot wakes a snoozed conversation when the customer writes.
            self.status = Status::Open;
            self.status_at_ms = at_ms;
        }
        match self.episode.first_customer_message_at_ms {
            None => self.episode.first_customer_message_at_ms = Some(at_ms),
            // An earlier message delivered late moves the start back, until it is measured.
            Some(start) if at_ms < start && self.episode.first_reply_at_ms.is_none() => {
                self.episode.first_customer_message_at_ms = Some(at_ms);
            }
            Some(_) => {}
        }
    }

    fn agent_reply(
        &mut self,
        at_ms: i64,
        policy: &LifecyclePolicy,
        effects: &mut Vec<LifecycleEffect>,
    ) {
        let Some(start) = self.episode.first_customer_message_at_ms else {
            return; // the agent wrote first (an outbound conversation): no response to time
        };
        if self.episode.first_reply_at_ms.is_some()
            || self.episode.resolved_at_ms.is_some()
            || at_ms < start
        {
            return;
        }
        self.episode.first_reply_at_ms = Some(at_ms);
        let took = elapsed(start, at_ms);
        effects.push(LifecycleEffect::FirstResponse {
            priority: self.priority,
            seconds: took.as_secs_f64(),
        });
        if took > policy.sla.first_response(self.priority) {
            self.breach(SlaKind::FirstResponse, effects);
        }
    }

    fn breach(&mut self, kind: SlaKind, effects: &mut Vec<LifecycleEffect>) {
        let counted = match kind {
            SlaKind::FirstResponse => &mut self.episode.first_response_breached,
            SlaKind::Resolution => &mut self.episode.resolution_breached,
        };
        if !*counted {
            *counted = true;
            effects.push(LifecycleEffect::SlaBreach {
                priority: self.priority,
                kind,
            });
        }
    }
}

/// True when the conversation has been resolved (not snoozed, not reopened since) for at least
/// `after` at `now_ms`, and is not closed yet.
pub fn auto_close_due(state: &ConversationState, now_ms: i64, after: Duration) -> bool {
    state.status == Status::Resolved
        && state.closed_at_ms.is_none()
        && state
            .resolved_since_ms
            .is_some_and(|since| elapsed(since, now_ms) >= after)
}

/// Time from `from_ms` to `to_ms`; zero when the clock went backwards.
fn elapsed(from_ms: i64, to_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(to_ms.saturating_sub(from_ms)).unwrap_or(0))
}
