//! Unit tests of the routing table and the decision tree: one per branch, the agent choice
//! rules, and the validation errors.

use std::collections::HashMap;

use copydesk::domain::Priority;
use serde_json::json;

use super::*;

/// The built-in table (`deploy/routing.example.toml`): teams General 1, Order Support 2,
/// Product Q&A 3, Managers 4, Senior Operators 5 (agents 8, 9), Safety 6 (agents 8, 10).
fn table() -> RoutingTable {
    RoutingTable::builtin().expect("the example routing file is valid")
}

fn agent(id: i64, availability: Availability, open: u32) -> AgentState {
    AgentState {
        id,
        team_ids: Vec::new(),
        availability,
        open_conversations: open,
    }
}

fn input(text: &str) -> RoutingInput {
    RoutingInput {
        text: text.to_owned(),
        ..RoutingInput::default()
    }
}

/// Everyone online with no open conversations.
fn everyone_online() -> Vec<AgentState> {
    (1..=10)
        .map(|id| agent(id, Availability::Online, 0))
        .collect()
}

fn route(input: &RoutingInput, agents: &[AgentState]) -> RoutingDecision {
    decide(&table(), input, agents, &mut RoundRobin::new())
}

#[test]
fn safety_word_routes_to_the_safety_team_as_urgent_with_an_online_agent() {
    let decision = route(
        &RoutingInput {
            priority: Some(Priority::Low),
            ..input("There is a FUEL LEAK under the car after fitting your hose")
        },
        &everyone_online(),
    );
    assert_eq!(decision.team().name, "Safety");
    assert_eq!(decision.priority(), Priority::Urgent);
    assert_eq!(
        decision.reason(),
        &RoutingReason::Safety {
            matched: Some("FUEL LEAK".into())
        }
    );
    assert_eq!(decision.agent_id(), Some(8));
}

#[test]
fn drafter_safety_flag_alone_is_enough_for_the_safety_branch() {
    let decision = route(
        &RoutingInput {
            safety: true,
            ..input("something odd happened")
        },
        &everyone_online(),
    );
    assert_eq!(decision.team().id, 6);
    assert_eq!(decision.reason(), &RoutingReason::Safety { matched: None });
}

#[test]
fn safety_with_nobody_online_in_the_safety_team_takes_anyone_online() {
    let agents = [
        agent(8, Availability::Offline, 0),
        agent(10, Availability::Offline, 0),
        agent(3, Availability::Online, 4),
        agent(5, Availability::Online, 2),
    ];
    let decision = route(&input("I smell fuel in the garage"), &agents);
    match decision {
        RoutingDecision::Assign {
            team,
            agent_id,
            priority,
            pick,
            ..
        } => {
            assert_eq!(team.name, "Safety");
            assert_eq!(agent_id, 5, "the least loaded online agent of any team");
            assert_eq!(priority, Priority::Urgent);
            assert!(pick.outside_team);
        }
        other => panic!("expected an assignment, got {other:?}"),
    }
}

#[test]
fn vip_goes_to_senior_operators_at_high_priority() {
    let decision = route(
        &RoutingInput {
            vip: true,
            priority: Some(Priority::Low),
            ..input("where is my order 12345?")
        },
        &everyone_online(),
    );
    assert_eq!(decision.team().name, "Senior Operators");
    assert_eq!(decision.priority(), Priority::High);
    assert_eq!(decision.reason(), &RoutingReason::Vip);
    assert_eq!(decision.agent_id(), Some(8));
}

#[test]
fn vip_keeps_a_more_urgent_hint() {
    let decision = route(
        &RoutingInput {
            vip: true,
            priority: Some(Priority::Urgent),
            ..input("hello")
        },
        &everyone_online(),
    );
    assert_eq!(decision.priority(), Priority::Urgent);
}

#[test]
fn order_status_intent_goes_to_order_support() {
    for text in [
        "Where is my order? It says shipped",
        "Any news on order #48213",
        "I need the tracking number please",
    ] {
        let decision = route(&input(text), &everyone_online());
        assert_eq!(decision.team().name, "Order Support", "{text}");
        assert_eq!(
            decision.reason(),
            &RoutingReason::Intent {
                name: "order_status".into()
            },
            "{text}"
        );
    }
}

#[test]
fn product_question_intent_goes_to_product_qa() {
    for text in [
        "Which AN-6 fitting fits a 3/8 hard line?",
        "Is your PTFE hose compatible with E85?",
        "what size adapter do I need",
    ] {
        let decision = route(&input(text), &everyone_online());
        assert_eq!(decision.team().name, "Product Q&A", "{text}");
        assert_eq!(decision.priority(), Priority::Normal, "{text}");
    }
}

#[test]
fn complaint_intent_goes_to_managers_even_when_it_mentions_an_order() {
    let decision = route(
        &input("This is unacceptable, my order 5521 was delivered late again"),
        &everyone_online(),
    );
    assert_eq!(decision.team().name, "Managers");
    assert_eq!(
        decision.reason(),
        &RoutingReason::Intent {
            name: "complaint".into()
        }
    );
    assert_eq!(decision.agent_id(), Some(7));
}

#[test]
fn unmatched_text_goes_to_the_default_team_with_the_hinted_priority() {
    let decision = route(
        &RoutingInput {
            priority: Some(Priority::Low),
            ..input("Hello, are you open on Saturdays?")
        },
        &everyone_online(),
    );
    assert_eq!(decision.team().name, "General");
    assert_eq!(decision.reason(), &RoutingReason::Default);
    assert_eq!(decision.priority(), Priority::Low);
}

#[test]
fn the_online_agent_with_the_lowest_workload_wins() {
    let agents = [
        agent(3, Availability::Online, 5),
        agent(4, Availability::Online, 2),
    ];
    let decision = route(&input("tracking number?"), &agents);
    assert_eq!(decision.agent_id(), Some(4));
    match decision {
        RoutingDecision::Assign { pick, .. } => assert_eq!(pick.tied, 1),
        other => panic!("expected an assignment, got {other:?}"),
    }
}

#[test]
fn agents_with_equal_workload_take_turns() {
    let table = table();
    let agents = [
        agent(3, Availability::Online, 1),
        agent(4, Availability::Online, 1),
    ];
    let mut rr = RoundRobin::new();
    let picks: Vec<_> = (0..3)
        .map(|_| decide(&table, &input("where is my order"), &agents, &mut rr).agent_id())
        .collect();
    assert_eq!(picks, [Some(3), Some(4), Some(3)]);
}

#[test]
fn offline_agents_are_skipped_even_with_less_work() {
    let agents = [
        agent(3, Availability::Offline, 0),
        agent(4, Availability::Online, 9),
    ];
    assert_eq!(route(&input("tracking?"), &agents).agent_id(), Some(4));
}

#[test]
fn busy_agents_are_a_fallback_only_when_nobody_is_online() {
    let agents = [
        agent(3, Availability::Busy, 0),
        agent(4, Availability::Online, 9),
    ];
    assert_eq!(route(&input("tracking?"), &agents).agent_id(), Some(4));
    let agents = [
        agent(3, Availability::Busy, 0),
        agent(4, Availability::Offline, 0),
    ];
    assert_eq!(route(&input("tracking?"), &agents).agent_id(), Some(3));
}

#[test]
fn busy_agents_are_never_picked_when_the_table_says_skip() {
    let text = DEFAULT_ROUTING_TOML.replace("busy_agents = \"fallback\"", "busy_agents = \"skip\"");
    let table = RoutingTable::from_toml_str(&text, "skip.toml").expect("valid");
    let agents = [agent(3, Availability::Busy, 0)];
    let decision = decide(&table, &input("tracking?"), &agents, &mut RoundRobin::new());
    assert_eq!(decision.agent_id(), None);
}

#[test]
fn nobody_online_means_wait_with_team_and_priority() {
    let agents = [
        agent(3, Availability::Offline, 0),
        agent(4, Availability::Offline, 0),
        agent(1, Availability::Online, 0),
    ];
    let decision = route(
        &RoutingInput {
            priority: Some(Priority::High),
            ..input("where is my order")
        },
        &agents,
    );
    assert_eq!(
        decision,
        RoutingDecision::Wait {
            team: TeamRef {
                id: 2,
                name: "Order Support".into()
            },
            priority: Priority::High,
            reason: RoutingReason::Intent {
                name: "order_status".into()
            },
        }
    );
}

#[test]
fn agents_count_as_members_through_their_chatwoot_team_ids() {
    let agents = [AgentState {
        id: 42,
        team_ids: vec![3],
        availability: Availability::Online,
        open_conversations: 0,
    }];
    assert_eq!(route(&input("which hose?"), &agents).agent_id(), Some(42));
}

#[test]
fn escalation_goes_to_the_named_team() {
    let decision = route(
        &RoutingInput {
            escalation_team: Some("managers".into()),
            ..input("where is my order")
        },
        &everyone_online(),
    );
    assert_eq!(decision.team().name, "Managers");
    assert_eq!(
        decision.reason(),
        &RoutingReason::Escalation {
            team: "Managers".into()
        }
    );
    assert_eq!(decision.agent_id(), Some(7));
}

#[test]
fn escalation_to_an_unknown_team_falls_back_to_the_tree() {
    let decision = route(
        &RoutingInput {
            escalation_team: Some("Nobody".into()),
            ..input("where is my order")
        },
        &everyone_online(),
    );
    assert_eq!(decision.team().name, "Order Support");
}

#[test]
fn vip_rules_match_contact_and_conversation_attributes() {
    let table = table();
    let empty = serde_json::Map::new();
    let attrs = |v: serde_json::Value| v.as_object().cloned().expect("an object");
    assert!(table.is_vip(&attrs(json!({"vip": true})), &empty));
    assert!(table.is_vip(&empty, &attrs(json!({"vip": "Yes"}))));
    assert!(table.is_vip(&attrs(json!({"customer_tier": "GOLD"})), &empty));
    // customer_tier is a contact-only rule.
    assert!(!table.is_vip(&empty, &attrs(json!({"customer_tier": "gold"}))));
    assert!(!table.is_vip(&attrs(json!({"vip": false})), &empty));
    assert!(!table.is_vip(&empty, &empty));
}

#[test]
fn sla_targets_default_to_5_15_30_60_minutes() {
    let table = table();
    let minutes = |p| table.sla().first_response(p).as_secs() / 60;
    assert_eq!(
        [
            Priority::Urgent,
            Priority::High,
            Priority::Normal,
            Priority::Low
        ]
        .map(minutes),
        [5, 15, 30, 60]
    );
    assert_eq!(SlaTargets::default(), *table.sla());
}

/// The example file with one substitution; panics when `from` is not in it.
fn example_with(from: &str, to: &str) -> String {
    assert!(
        DEFAULT_ROUTING_TOML.contains(from),
        "{from:?} not in the example"
    );
    DEFAULT_ROUTING_TOML.replacen(from, to, 1)
}

fn error_of(text: &str) -> String {
    RoutingTable::from_toml_str(text, "/etc/copydesk/routing.toml")
        .expect_err("the file is invalid")
        .to_string()
}

#[test]
fn bad_files_are_rejected_with_the_file_and_the_field_named() {
    let cases = [
        (
            example_with("team = \"Order Support\"", "team = \"Shipping\""),
            "intents[1].team",
        ),
        (
            example_with(r"'order\s*", r"'order(\s*"),
            "intents[1].regexes[0]",
        ),
        (example_with("id = 3", "id = 2"), "teams[2].id"),
        (
            example_with("default_team = \"General\"", "default_team = \"Gen\""),
            "default_team",
        ),
        (
            example_with("urgent = 5,", "urgent = 0,"),
            "sla.first_response_minutes.urgent",
        ),
        (
            // Minutes that overflow as seconds (and as a deadline) are a clear error.
            example_with("urgent = 5,", "urgent = 9223372036854775807,"),
            "sla.first_response_minutes.urgent",
        ),
        (
            example_with("urgent = 5,", "urgent = 527041,"),
            "sla.first_response_minutes.urgent",
        ),
        (
            example_with("busy_agents = \"fallback\"", "busy_agent = \"fallback\""),
            "busy_agent",
        ),
        (
            example_with("values = [\"gold\", \"platinum\", \"vip\"]", "values = []"),
            "vip.rules[1].values",
        ),
    ];
    for (text, field) in cases {
        let message = error_of(&text);
        assert!(message.contains("/etc/copydesk/routing.toml"), "{message}");
        assert!(message.contains(field), "expected {field} in: {message}");
    }
}

#[test]
fn routing_file_comes_from_the_environment_or_the_built_in_default() {
    let dir = std::env::temp_dir().join(format!("copydesk-routing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("routing.toml");
    std::fs::write(
        &path,
        example_with("name = \"General\"", "name = \"Front Desk\"").replace(
            "default_team = \"General\"",
            "default_team = \"Front Desk\"",
        ),
    )
    .expect("write");
    let env: HashMap<String, String> = [(ROUTING_FILE_VAR.to_owned(), path.display().to_string())]
        .into_iter()
        .collect();
    let loaded = RoutingTable::from_env(&env).expect("valid file");
    assert_eq!(loaded.default_team().name, "Front Desk");

    let builtin = RoutingTable::from_env(&HashMap::<String, String>::new()).expect("builtin");
    assert_eq!(builtin.default_team().name, "General");

    let missing: HashMap<String, String> = [(
        ROUTING_FILE_VAR.to_owned(),
        dir.join("nope.toml").display().to_string(),
    )]
    .into_iter()
    .collect();
    let message = RoutingTable::from_env(&missing)
        .expect_err("missing")
        .to_string();
    assert!(message.contains("nope.toml"), "{message}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

const YAML_TABLE: &str = r#"
default_team: Front
senior_team: Front
safety_team: Front
teams:
  - name: Front
    id: 1
    agents: [1]
  - name: Orders
    id: 2
    agents: [2]
intents:
  - name: order_status
    team: Orders
    keywords: [tracking]
sla:
  first_response_minutes: {urgent: 1, high: 2, normal: 3, low: 4}
  resolution_minutes: {urgent: 10, high: 20, normal: 30, low: 40}
"#;

#[test]
fn yaml_routing_files_use_the_same_fields() {
    let dir = std::env::temp_dir().join(format!("copydesk-routing-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("routing.yaml");
    std::fs::write(&path, YAML_TABLE).expect("write");
    let table = RoutingTable::load(&path).expect("valid YAML table");
    let decision = decide(
        &table,
        &input("tracking please"),
        &[agent(2, Availability::Online, 0)],
        &mut RoundRobin::new(),
    );
    assert_eq!(decision.team().name, "Orders");
    assert_eq!(decision.agent_id(), Some(2));
    assert_eq!(table.sla().first_response(Priority::Low).as_secs(), 240);

    std::fs::write(&path, YAML_TABLE.replace("team: Orders", "team: Shipping")).expect("write");
    let message = RoutingTable::load(&path)
        .expect_err("unknown team")
        .to_string();
    assert!(
        message.contains("routing.yaml") && message.contains("intents[0].team"),
        "{message}"
    );
    std::fs::write(&path, YAML_TABLE.replace("safety_team", "safety_tem")).expect("write");
    let message = RoutingTable::load(&path)
        .expect_err("unknown key")
        .to_string();
    assert!(message.contains("safety_tem"), "{message}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
