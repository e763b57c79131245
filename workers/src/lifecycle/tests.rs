//! Unit tests of the lifecycle state machine: a scripted conversation with hand-computed FRT
//! and TTR, SLA breaches, auto-close, replays and CSAT.

use std::collections::HashMap;
use std::time::Duration;

use copydesk::domain::{MessageId, Priority};
use copydesk::jobs::ConversationChange;

use super::*;

/// 2023-11-14T22:13:20Z, an arbitrary start.
const T0: i64 = 1_700_000_000_000;
const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

fn customer(message_id: i64) -> ConversationChange {
    ConversationChange::CustomerMessage {
        message_id: MessageId::new(message_id),
    }
}

fn agent(message_id: i64) -> ConversationChange {
    ConversationChange::AgentReply {
        message_id: MessageId::new(message_id),
        sender_id: Some(7),
    }
}

fn status(status: &str) -> ConversationChange {
    ConversationChange::StatusChanged {
        status: status.into(),
    }
}

fn priority(priority: &str) -> ConversationChange {
    ConversationChange::Updated {
        status: "open".into(),
        assignee_id: Some(7),
        priority: Some(priority.into()),
    }
}

/// A scripted event: id, change, time.
type Script = Vec<(&'static str, ConversationChange, i64)>;

/// Runs the script (each event processed at its own time) and collects every effect.
fn run(state: &mut ConversationState, script: &Script) -> Vec<LifecycleEffect> {
    let policy = LifecyclePolicy::default();
    script
        .iter()
        .flat_map(|(id, change, at)| state.apply(id, change, *at, *at, &policy))
        .collect()
}

/// created → customer message → agent reply → resolved → customer reopens → agent reply →
/// resolved.
fn two_episodes() -> Script {
    vec![
        (
            "d1",
            ConversationChange::Created {
                status: "open".into(),
            },
            T0,
        ),
        ("d2", customer(101), T0 + 10 * SECOND),
        ("d3", agent(102), T0 + 10 * SECOND + 4 * MINUTE),
        ("d4", status("resolved"), T0 + 10 * SECOND + HOUR),
        ("d5", customer(103), T0 + 2 * HOUR),
        ("d6", agent(104), T0 + 2 * HOUR + 20 * MINUTE),
        ("d7", status("resolved"), T0 + 3 * HOUR + 30 * MINUTE),
    ]
}

#[test]
fn scripted_conversation_gives_hand_computed_frt_and_ttr_for_both_episodes() {
    let mut state = ConversationState::new();
    let effects = run(&mut state, &two_episodes());
    let normal = Priority::Normal;
    assert_eq!(
        effects,
        vec![
            // Episode 1: customer at +10 s, reply at +4 min 10 s, resolved at +1 h 10 s.
            LifecycleEffect::FirstResponse {
                priority: normal,
                seconds: 240.0
            },
            LifecycleEffect::Resolved {
                priority: normal,
                seconds: 3_600.0
            },
            // Episode 2: customer at +2 h, reply at +2 h 20 min, resolved at +3 h 30 min.
            LifecycleEffect::Reopened { reopen_count: 1 },
            LifecycleEffect::FirstResponse {
                priority: normal,
                seconds: 1_200.0
            },
            LifecycleEffect::Resolved {
                priority: normal,
                seconds: 5_400.0
            },
        ]
    );
    assert_eq!(state.status, Status::Resolved);
    assert_eq!(state.reopen_count, 1);
    assert_eq!(state.episode.number, 2);
    assert_eq!(state.created_at_ms, Some(T0));
}

#[test]
fn a_late_first_reply_counts_one_first_response_breach() {
    let mut state = ConversationState::new();
    let effects = run(
        &mut state,
        &vec![
            ("d1", priority("high"), T0),
            ("d2", customer(1), T0 + SECOND),
            // High priority target: 15 minutes; this reply comes after 20.
            ("d3", agent(2), T0 + SECOND + 20 * MINUTE),
        ],
    );
    assert_eq!(
        effects,
        vec![
            LifecycleEffect::FirstResponse {
                priority: Priority::High,
                seconds: 1_200.0
            },
            LifecycleEffect::SlaBreach {
                priority: Priority::High,
                kind: SlaKind::FirstResponse
            },
        ]
    );
}

#[test]
fn a_reply_exactly_on_target_is_not_a_breach() {
    let mut state = ConversationState::new();
    let effects = run(
        &mut state,
        &vec![
            ("d1", priority("urgent"), T0),
            ("d2", customer(1), T0),
            ("d3", agent(2), T0 + 5 * MINUTE),
        ],
    );
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, LifecycleEffect::SlaBreach { .. })),
        "{effects:?}"
    );
}

#[test]
fn a_sweep_counts_an_overdue_reply_once_and_the_late_reply_does_not_count_it_again() {
    let policy = LifecyclePolicy::default();
    let mut state = ConversationState::new();
    state.apply("d1", &customer(1), T0, T0, &policy);
    assert!(state.sweep(T0 + 29 * MINUTE, &policy).is_empty());
    let breach = LifecycleEffect::SlaBreach {
        priority: Priority::Normal,
        kind: SlaKind::FirstResponse,
    };
    assert_eq!(state.sweep(T0 + 31 * MINUTE, &policy), vec![breach]);
    assert!(state.sweep(T0 + 40 * MINUTE, &policy).is_empty());
    let effects = state.apply("d2", &agent(2), T0 + 45 * MINUTE, T0 + 45 * MINUTE, &policy);
    assert_eq!(
        effects,
        vec![LifecycleEffect::FirstResponse {
            priority: Priority::Normal,
            seconds: 2_700.0
        }]
    );
}

#[test]
fn a_late_resolution_counts_a_resolution_breach() {
    let mut state = ConversationState::new();
    let effects = run(
        &mut state,
        &vec![
            ("d1", customer(1), T0),
            ("d2", agent(2), T0 + MINUTE),
            // Normal resolution target: 24 hours.
            ("d3", status("resolved"), T0 + 25 * HOUR),
        ],
    );
    assert_eq!(
        effects.last(),
        Some(&LifecycleEffect::SlaBreach {
            priority: Priority::Normal,
            kind: SlaKind::Resolution
        })
    );
}

#[test]
fn replayed_events_do_not_double_count() {
    let mut state = ConversationState::new();
    let script = two_episodes();
    let first = run(&mut state, &script);
    assert_eq!(first.len(), 5);
    let snapshot = state.clone();

    // The same deliveries again.
    assert!(run(&mut state, &script).is_empty());
    // The same messages under new delivery ids (Chatwoot repeats webhooks that way).
    let renamed: Script = script
        .iter()
        .map(|(_, change, at)| ("again", change.clone(), *at))
        .collect();
    assert!(run(&mut state, &renamed).is_empty());
    assert_eq!(state.episode, snapshot.episode);
    assert_eq!(state.reopen_count, 1);
}

#[test]
fn a_stale_resolution_replayed_after_a_reopen_is_ignored() {
    let mut state = ConversationState::new();
    let policy = LifecyclePolicy::default();
    run(
        &mut state,
        &vec![
            ("d1", customer(1), T0),
            ("d2", status("resolved"), T0 + HOUR),
            ("d3", customer(2), T0 + 2 * HOUR),
        ],
    );
    let effects = state.apply(
        "d2-redelivered",
        &status("resolved"),
        T0 + HOUR,
        T0 + 3 * HOUR,
        &policy,
    );
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(state.status, Status::Open);
    assert_eq!(state.episode.number, 2);
}

#[test]
fn a_late_customer_message_from_a_finished_episode_does_not_reopen() {
    let mut state = ConversationState::new();
    let policy = LifecyclePolicy::default();
    run(
        &mut state,
        &vec![
            ("d1", customer(1), T0),
            ("d2", status("resolved"), T0 + HOUR),
        ],
    );
    let effects = state.apply("d3", &customer(9), T0 + 30 * MINUTE, T0 + 2 * HOUR, &policy);
    assert!(effects.is_empty(), "{effects:?}");
    assert_eq!(state.status, Status::Resolved);
    assert_eq!(state.reopen_count, 0);
}

#[test]
fn auto_close_fires_once_after_the_configured_time() {
    let policy = LifecyclePolicy {
        auto_close_after: Duration::from_secs(2 * 24 * 3600),
        ..LifecyclePolicy::default()
    };
    let mut state = ConversationState::new();
    let resolved_at = T0 + HOUR;
    run(
        &mut state,
        &vec![
            ("d1", customer(1), T0),
            ("d2", agent(2), T0 + MINUTE),
            ("d3", status("resolved"), resolved_at),
        ],
    );
    let sweep = ConversationChange::AutoCloseSweep;
    let due = resolved_at + 2 * DAY;
    assert!(!auto_close_due(&state, due - 1, policy.auto_close_after));
    assert!(state
        .apply("s1", &sweep, due - 1, due - 1, &policy)
        .is_empty());
    assert_eq!(
        state.apply("s2", &sweep, due, due, &policy),
        vec![LifecycleEffect::Closed]
    );
    assert_eq!(state.closed_at_ms, Some(due));
    assert!(state.is_closed());
    assert!(state
        .apply("s3", &sweep, due + DAY, due + DAY, &policy)
        .is_empty());
    assert!(!auto_close_due(&state, due + DAY, policy.auto_close_after));
}

#[test]
fn snoozed_conversations_are_not_auto_closed() {
    let policy = LifecyclePolicy::default();
    let mut state = ConversationState::new();
    run(
        &mut state,
        &vec![
            ("d1", customer(1), T0),
            ("d2", status("resolved"), T0 + HOUR),
            ("d3", status("snoozed"), T0 + 2 * HOUR),
        ],
    );
    assert!(state.is_snoozed());
    let later = T0 + 30 * DAY;
    assert!(!auto_close_due(&state, later, policy.auto_close_after));
    assert!(!state
        .sweep(later, &policy)
        .contains(&LifecycleEffect::Closed));
}

#[test]
fn reopened_conversations_are_not_auto_closed_and_the_clock_restarts() {
    let policy = LifecyclePolicy::default();
    let mut state = ConversationState::new();
    run(
        &mut state,
        &vec![
            ("d1", customer(1), T0),
            ("d2", status("resolved"), T0 + HOUR),
            ("d3", customer(2), T0 + 6 * DAY),
        ],
    );
    assert!(!auto_close_due(
        &state,
        T0 + 8 * DAY,
        policy.auto_close_after
    ));
    run(&mut state, &vec![("d4", status("resolved"), T0 + 7 * DAY)]);
    assert!(!auto_close_due(
        &state,
        T0 + 13 * DAY,
        policy.auto_close_after
    ));
    assert!(auto_close_due(
        &state,
        T0 + 14 * DAY,
        policy.auto_close_after
    ));
}

#[test]
fn a_customer_message_on_a_closed_conversation_reopens_it() {
    let policy = LifecyclePolicy::default();
    let mut state = ConversationState::new();
    run(
        &mut state,
        &vec![
            ("d1", customer(1), T0),
            ("d2", status("resolved"), T0 + HOUR),
        ],
    );
    assert_eq!(
        state.sweep(T0 + 8 * DAY, &policy),
        vec![LifecycleEffect::Closed]
    );
    let effects = state.apply("d3", &customer(2), T0 + 9 * DAY, T0 + 9 * DAY, &policy);
    assert_eq!(effects, vec![LifecycleEffect::Reopened { reopen_count: 1 }]);
    assert!(!state.is_closed());
    assert_eq!(state.status, Status::Open);
}

#[test]
fn csat_is_recorded_once_and_a_changed_answer_again() {
    let policy = LifecyclePolicy::default();
    let mut state = ConversationState::new();
    let answer = |rating| ConversationChange::CsatAnswered {
        rating,
        feedback: None,
    };
    assert_eq!(
        state.apply("c1", &answer(4), T0, T0, &policy),
        vec![LifecycleEffect::CsatRecorded { rating: 4 }]
    );
    assert!(state.apply("c1", &answer(4), T0, T0, &policy).is_empty());
    assert!(state
        .apply("c1-again", &answer(4), T0, T0, &policy)
        .is_empty());
    assert_eq!(
        state.apply("c2", &answer(2), T0 + MINUTE, T0 + MINUTE, &policy),
        vec![LifecycleEffect::CsatRecorded { rating: 2 }]
    );
    assert!(state
        .apply("c3", &answer(9), T0 + HOUR, T0 + HOUR, &policy)
        .is_empty());
    assert_eq!(state.csat.as_ref().map(|c| c.rating), Some(2));
}

#[test]
fn state_survives_a_json_round_trip_mid_conversation() {
    let policy = LifecyclePolicy::default();
    let mut state = ConversationState::new();
    state.apply("d1", &customer(1), T0, T0, &policy);
    let json = serde_json::to_string(&state).expect("serialises");
    let mut back: ConversationState = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, state);
    // The replay memory came along too.
    assert!(back.apply("d1", &customer(1), T0, T0, &policy).is_empty());
    // An empty object is a fresh conversation.
    let fresh: ConversationState = serde_json::from_str("{}").expect("defaults");
    assert_eq!(fresh, ConversationState::new());
}

#[test]
fn auto_close_delay_comes_from_the_environment() {
    let env: HashMap<String, String> = [(AUTO_CLOSE_AFTER_VAR.to_owned(), "3600".to_owned())]
        .into_iter()
        .collect();
    let policy = LifecyclePolicy::from_env(&env, Default::default()).expect("valid");
    assert_eq!(policy.auto_close_after, Duration::from_secs(3600));
    let none = HashMap::<String, String>::new();
    let policy = LifecyclePolicy::from_env(&none, Default::default()).expect("valid");
    assert_eq!(policy.auto_close_after, DEFAULT_AUTO_CLOSE_AFTER);
    let zero: HashMap<String, String> = [(AUTO_CLOSE_AFTER_VAR.to_owned(), "0".to_owned())]
        .into_iter()
        .collect();
    let err = LifecyclePolicy::from_env(&zero, Default::default()).expect_err("zero");
    assert!(err.to_string().contains(AUTO_CLOSE_AFTER_VAR), "{err}");
}
