//! The routing table: teams, intents, safety words, VIP rules and SLA targets, read from the
//! file named by `COPYDESK_ROUTING_FILE` (TOML, or YAML when the name ends in `.yaml`/`.yml`;
//! the same fields either way), or the built-in default, which is
//! `deploy/routing.example.toml`.
//!
//! The file is parsed into plain serde structs ([`RoutingFile`]) and then validated into a
//! [`RoutingTable`] whose names are resolved and whose patterns are compiled, so the decision
//! tree never meets a dangling team name or a broken regex at run time. Every validation error
//! names the file, the field (`intents[2].team`) and what is wrong with it.

use std::collections::HashSet;
use std::path::Path;

use copydesk::config::EnvSource;
use copydesk::domain::Priority;
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::file::{AttributeScope, BusyAgents, RoutingFile, SlaTargets, VipRule, MAX_SLA_MINUTES};

/// The variable naming the routing file.
pub const ROUTING_FILE_VAR: &str = "COPYDESK_ROUTING_FILE";

/// The built-in routing table, used when `COPYDESK_ROUTING_FILE` is unset.
pub const DEFAULT_ROUTING_TOML: &str = include_str!("../../../deploy/routing.example.toml");

/// What the built-in table is called in error messages.
const BUILTIN_ORIGIN: &str = "<built-in routing table (deploy/routing.example.toml)>";

/// Upper bound of a compiled intent or safety pattern, so a hostile file cannot make a
/// pattern that eats the worker's memory.
const MAX_PATTERN_BYTES: usize = 1 << 20;

/// A routing file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The file could not be read.
    #[error("routing file {origin} (COPYDESK_ROUTING_FILE): cannot read it: {cause}")]
    Unreadable {
        /// The file's path.
        origin: String,
        /// Why (in the message, not chained: it would be printed twice).
        cause: std::io::Error,
    },
    /// The file is not TOML (or YAML) of the expected shape; the parser's message names the
    /// key and the line.
    #[error("routing file {origin}: {message}")]
    Malformed {
        /// The file's path.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// The file parsed but a field holds an unusable value.
    #[error("routing file {origin}: field `{field}`: {problem}")]
    Invalid {
        /// The file's path.
        origin: String,
        /// The field, e.g. `intents[2].team`.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

/// A team as the decision tree reports it: Chatwoot id and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TeamRef {
    /// Chatwoot team id.
    pub id: i64,
    /// Name from the routing file.
    pub name: String,
}

/// A validated team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Id and name.
    pub team: TeamRef,
    /// Agent ids listed in the routing file.
    pub agents: Vec<i64>,
}

/// A validated intent: compiled matcher plus the index of its team.
#[derive(Debug, Clone)]
pub(crate) struct Intent {
    pub(crate) name: String,
    pub(crate) team: usize,
    keywords: Option<Regex>,
    regexes: Vec<Regex>,
}

impl Intent {
    /// True when the text says this intent.
    pub(crate) fn matches(&self, text: &str) -> bool {
        self.keywords.as_ref().is_some_and(|k| k.is_match(text))
            || self.regexes.iter().any(|r| r.is_match(text))
    }
}

/// The validated routing table. Build it with [`RoutingTable::from_env`],
/// [`RoutingTable::load`], [`RoutingTable::from_toml_str`] or [`RoutingTable::builtin`].
#[derive(Debug, Clone)]
pub struct RoutingTable {
    pub(crate) teams: Vec<Team>,
    pub(crate) intents: Vec<Intent>,
    pub(crate) default_team: usize,
    pub(crate) senior_team: usize,
    pub(crate) safety_team: usize,
    pub(crate) busy_agents: BusyAgents,
    safety_words: Option<Regex>,
    vip_rules: Vec<VipRule>,
    sla: SlaTargets,
}

impl RoutingTable {
    /// The table named by `COPYDESK_ROUTING_FILE`, or the built-in one when it is unset.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, RoutingError> {
        match env.get(ROUTING_FILE_VAR) {
            Some(path) => Self::load(Path::new(path.trim())),
            None => Self::builtin(),
        }
    }

    /// Reads and validates a routing file: YAML when its name ends in `.yaml` or `.yml`,
    /// TOML otherwise.
    pub fn load(path: &Path) -> Result<Self, RoutingError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|cause| RoutingError::Unreadable {
            origin: origin.clone(),
            cause,
        })?;
        let yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
        if yaml {
            Self::from_yaml_str(&text, &origin)
        } else {
            Self::from_toml_str(&text, &origin)
        }
    }

    /// The built-in table (`deploy/routing.example.toml`).
    pub fn builtin() -> Result<Self, RoutingError> {
        Self::from_toml_str(DEFAULT_ROUTING_TOML, BUILTIN_ORIGIN)
    }

    /// Parses and validates TOML text; `origin` names it in errors (usually the path).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, RoutingError> {
        let file: RoutingFile = toml::from_str(text).map_err(|e| RoutingError::Malformed {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_file(file, origin)
    }

    /// Parses and validates YAML text with the same fields as the TOML file.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Self, RoutingError> {
        let file: RoutingFile =
            serde_norway::from_str(text).map_err(|e| RoutingError::Malformed {
                origin: origin.to_owned(),
                message: e.to_string(),
            })?;
        Self::from_file(file, origin)
    }

    /// Validates a parsed file: names resolve, ids are unique, patterns compile, targets are
    /// positive.
    pub fn from_file(file: RoutingFile, origin: &str) -> Result<Self, RoutingError> {
        let invalid = |field: String, problem: String| RoutingError::Invalid {
            origin: origin.to_owned(),
            field,
            problem,
        };

        if file.teams.is_empty() {
            return Err(invalid(
                "teams".into(),
                "at least one team is required".into(),
            ));
        }
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        let mut teams = Vec::with_capacity(file.teams.len());
        for (i, t) in file.teams.iter().enumerate() {
            let name = t.name.trim();
            if name.is_empty() {
                return Err(invalid(format!("teams[{i}].name"), "is empty".into()));
            }
            if !names.insert(name.to_lowercase()) {
                return Err(invalid(
                    format!("teams[{i}].name"),
                    format!("team {name:?} is listed twice"),
                ));
            }
            if t.id <= 0 {
                return Err(invalid(
                    format!("teams[{i}].id"),
                    format!("{} is not a Chatwoot team id (a positive integer)", t.id),
                ));
            }
            if !ids.insert(t.id) {
                return Err(invalid(
                    format!("teams[{i}].id"),
                    format!("team id {} is used by two teams", t.id),
                ));
            }
            if let Some((j, bad)) = t.agents.iter().enumerate().find(|(_, a)| **a <= 0) {
                return Err(invalid(
                    format!("teams[{i}].agents[{j}]"),
                    format!("{bad} is not a Chatwoot agent id (a positive integer)"),
                ));
            }
            teams.push(Team {
                team: TeamRef {
                    id: t.id,
                    name: name.to_owned(),
                },
                agents: t.agents.clone(),
            });
        }
        let find = |field: &str, name: &str| {
            team_index(&teams, name).ok_or_else(|| {
                invalid(
                    field.to_owned(),
                    format!(
                        "no team named {name:?} (teams: {})",
                        teams
                            .iter()
                            .map(|t| t.team.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        };
        let default_team = find("default_team", &file.default_team)?;
        let senior_team = find("senior_team", &file.senior_team)?;
        let safety_team = find("safety_team", &file.safety_team)?;

        let mut intents = Vec::with_capacity(file.intents.len());
        let mut intent_names = HashSet::new();
        for (i, entry) in file.intents.iter().enumerate() {
            let name = entry.name.trim();
            if name.is_empty() {
                return Err(invalid(format!("intents[{i}].name"), "is empty".into()));
            }
            if !intent_names.insert(name.to_lowercase()) {
                return Err(invalid(
                    format!("intents[{i}].name"),
                    format!("intent {name:?} is listed twice"),
                ));
            }
            let team = find(&format!("intents[{i}].team"), &entry.team)?;
            if entry.keywords.is_empty() && entry.regexes.is_empty() {
                return Err(invalid(
                    format!("intents[{i}]"),
                    "needs at least one of `keywords` or `regexes`".into(),
                ));
            }
            let keywords = phrase_matcher(&entry.keywords)
                .map_err(|(j, p)| invalid(format!("intents[{i}].keywords[{j}]"), p))?;
            let mut regexes = Vec::with_capacity(entry.regexes.len());
            for (j, pattern) in entry.regexes.iter().enumerate() {
                let regex = compile(pattern)
                    .map_err(|p| invalid(format!("intents[{i}].regexes[{j}]"), p))?;
                regexes.push(regex);
            }
            intents.push(Intent {
                name: name.to_owned(),
                team,
                keywords,
                regexes,
            });
        }

        let safety_words = phrase_matcher(&file.safety.words)
            .map_err(|(j, p)| invalid(format!("safety.words[{j}]"), p))?;

        for (i, rule) in file.vip.rules.iter().enumerate() {
            if rule.attribute.trim().is_empty() {
                return Err(invalid(
                    format!("vip.rules[{i}].attribute"),
                    "is empty".into(),
                ));
            }
            if rule.values.is_empty() {
                return Err(invalid(
                    format!("vip.rules[{i}].values"),
                    "lists no value (e.g. values = [\"true\", \"gold\"])".into(),
                ));
            }
            if let Some(j) = rule.values.iter().position(|v| v.trim().is_empty()) {
                return Err(invalid(
                    format!("vip.rules[{i}].values[{j}]"),
                    "is empty".into(),
                ));
            }
        }

        for (section, minutes) in [
            (
                "sla.first_response_minutes",
                file.sla.first_response_minutes,
            ),
            ("sla.resolution_minutes", file.sla.resolution_minutes),
        ] {
            for priority in [
                Priority::Urgent,
                Priority::High,
                Priority::Normal,
                Priority::Low,
            ] {
                if !(1..=MAX_SLA_MINUTES).contains(&minutes.get(priority)) {
                    return Err(invalid(
                        format!("{section}.{}", priority.as_str()),
                        format!("must be between 1 and {MAX_SLA_MINUTES} minutes (a year)"),
                    ));
                }
            }
        }

        Ok(Self {
            teams,
            intents,
            default_team,
            senior_team,
            safety_team,
            busy_agents: file.busy_agents,
            safety_words,
            vip_rules: file.vip.rules,
            sla: SlaTargets::new(file.sla.first_response_minutes, file.sla.resolution_minutes),
        })
    }

    /// The SLA targets.
    pub fn sla(&self) -> &SlaTargets {
        &self.sla
    }

    /// Every team, in file order.
    pub fn teams(&self) -> impl Iterator<Item = &Team> {
        self.teams.iter()
    }

    /// A team by name (case-insensitive), e.g. to validate an operator's escalation.
    pub fn team(&self, name: &str) -> Option<&Team> {
        team_index(&self.teams, name).map(|i| &self.teams[i])
    }

    /// The team that gets unmatched conversations.
    pub fn default_team(&self) -> &TeamRef {
        &self.teams[self.default_team].team
    }

    /// The first safety word or phrase found in the text, if any.
    pub fn safety_match<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.safety_words
            .as_ref()
            .and_then(|r| r.find(text))
            .map(|m| m.as_str())
    }

    /// The name of the first intent (in file order) the text matches, if any.
    pub fn intent_of(&self, text: &str) -> Option<&str> {
        self.intents
            .iter()
            .find(|i| i.matches(text))
            .map(|i| i.name.as_str())
    }

    /// True when a VIP rule matches the contact's or the conversation's custom attributes.
    pub fn is_vip(
        &self,
        contact_attributes: &serde_json::Map<String, serde_json::Value>,
        conversation_attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        self.vip_rules.iter().any(|rule| {
            let sources: &[&serde_json::Map<String, serde_json::Value>] = match rule.scope {
                AttributeScope::Contact => &[contact_attributes],
                AttributeScope::Conversation => &[conversation_attributes],
                AttributeScope::Any => &[contact_attributes, conversation_attributes],
            };
            sources.iter().any(|attrs| {
                attrs
                    .get(rule.attribute.trim())
                    .and_then(attribute_text)
                    .is_some_and(|value| {
                        rule.values
                            .iter()
                            .any(|v| v.trim().eq_ignore_ascii_case(value.trim()))
                    })
            })
        })
    }
}

/// Index of the team with this name (case-insensitive, trimmed).
fn team_index(teams: &[Team], name: &str) -> Option<usize> {
    let name = name.trim();
    teams
        .iter()
        .position(|t| t.team.name.eq_ignore_ascii_case(name))
}

/// A custom attribute's value as text for comparison; arrays and objects never match.
fn attribute_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Compiles a user pattern case-insensitively with a size limit.
fn compile(pattern: &str) -> Result<Regex, String> {
    if pattern.trim().is_empty() {
        return Err("is empty".into());
    }
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(MAX_PATTERN_BYTES)
        .build()
        .map_err(|e| format!("not a valid regular expression: {e}"))
}

/// One case-insensitive, word-bounded alternation of literal phrases (`None` when the list is
/// empty). Whitespace inside a phrase matches any run of whitespace. On error, the index of the
/// bad phrase and the problem.
fn phrase_matcher(phrases: &[String]) -> Result<Option<Regex>, (usize, String)> {
    if phrases.is_empty() {
        return Ok(None);
    }
    let mut alternatives = Vec::with_capacity(phrases.len());
    for (i, phrase) in phrases.iter().enumerate() {
        let words: Vec<String> = phrase.split_whitespace().map(regex::escape).collect();
        if words.is_empty() {
            return Err((i, "is empty".into()));
        }
        alternatives.push(words.join(r"\s+"));
    }
    // Longest first, so "fuel leak" wins over "fuel" in reports of what matched.
    alternatives.sort_by_key(|a| std::cmp::Reverse(a.len()));
    let pattern = format!(r"\b(?:{})\b", alternatives.join("|"));
    compile(&pattern).map(Some).map_err(|e| (0, e))
}
