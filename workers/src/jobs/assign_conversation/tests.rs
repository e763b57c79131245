//! Unit tests of the assigner stage.

use super::*;

fn agent(id: i64) -> copydesk::chatwoot::Agent {
    serde_json::from_value(serde_json::json!({"id": id, "availability_status": "online"}))
        .expect("an agent")
}

#[test]
fn a_cleared_agent_assignment_is_a_retryable_error_not_a_success() {
    assert!(check_agent_outcome(&AssignOutcome::Agent(agent(7)), 1, 7).is_ok());
    assert!(matches!(
        check_agent_outcome(&AssignOutcome::Cleared, 1, 7),
        Err(JobError::Retryable(_))
    ));
    assert!(matches!(
        check_agent_outcome(&AssignOutcome::Agent(agent(8)), 1, 7),
        Err(JobError::Retryable(_))
    ));
}

#[test]
fn the_escalation_note_names_operator_team_and_note() {
    assert_eq!(
        escalation_note("anna", "Managers", " refund over limit "),
        "Escalated by anna to Managers: refund over limit"
    );
    assert_eq!(
        escalation_note("anna", "Managers", ""),
        "Escalated by anna to Managers."
    );
    assert_eq!(escalation_note_key("1-2-3"), "copydesk-escalation:1-2-3");
}

#[test]
fn bot_handoff_is_off_unless_set_to_one() {
    let mut env = std::collections::HashMap::new();
    assert!(!bot_handoff_from_env(&env).expect("default"));
    env.insert(BOT_HANDOFF_VAR.to_owned(), "1".to_owned());
    assert!(bot_handoff_from_env(&env).expect("set"));
    env.insert(BOT_HANDOFF_VAR.to_owned(), "yes".to_owned());
    let err = bot_handoff_from_env(&env).expect_err("not 0/1");
    assert!(err.to_string().contains(BOT_HANDOFF_VAR), "{err}");
}

#[test]
fn the_poll_interval_comes_from_the_environment() {
    let mut env = std::collections::HashMap::new();
    assert_eq!(
        waiting_poll_from_env(&env).expect("default"),
        DEFAULT_WAITING_POLL
    );
    env.insert(WAITING_POLL_VAR.to_owned(), "250".to_owned());
    assert_eq!(
        waiting_poll_from_env(&env).expect("set"),
        Duration::from_millis(250)
    );
    env.insert(WAITING_POLL_VAR.to_owned(), "0".to_owned());
    assert!(waiting_poll_from_env(&env).is_err());
}
