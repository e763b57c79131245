//! `DraftPolicy`: the rules that turn a draft's confidence and the customer's words into an
//! action and a priority, shared by every drafter backend.
//!
//! - **Action**: confidence ≥ send threshold → `Send`; < escalate threshold → `Escalate`;
//!   otherwise `Review`. No knowledge at all → `Escalate`. Then the overrides: a safety
//!   issue is never `Send` (it becomes `Review`; `Escalate` stays), and neither is a reply to
//!   an angry customer, to a message that asks nothing ([`DraftPolicy::asks_something`]), or
//!   a truncated one.
//! - **Priority** (how soon a person must look, as the seed defines it; confidence plays no
//!   part): safety words → `Urgent`; else a VIP or an angry customer → `High`; else a message
//!   that can wait (it asks nothing — no `?`, no question word first — and every word only
//!   thanks or acknowledges, or it says so: "no rush", "whenever you can") from a
//!   customer who is not negative → `Low`; else `Normal`. A plain product question answered
//!   with confidence is `Normal`.
//! - **Safety words** match on word boundaries, case-insensitively, in the message and the
//!   customer's recent messages.
//! - **VIP**: a contact or conversation attribute named in `vip_attributes` whose value is
//!   `true`, a non-zero number, or a string that is `true`/`yes`/`1` or contains the word
//!   `vip` (`vip: true`, `tier: "VIP"`, `plan: "vip gold"`). The list is empty unless
//!   `COPYDESK_VIP_ATTRIBUTES` names attributes only your own systems write: a widget visitor
//!   can set custom attributes themselves ([`DEFAULT_VIP_ATTRIBUTES`]).

use copydesk::config::{parsed_or, ConfigError, EnvSource};

use super::draft::{Action, Priority, Sentiment};
use super::lexicon::{matches, matches_with_typos, phrases, words, Phrase};

/// Default `COPYDESK_SEND_THRESHOLD`.
pub const DEFAULT_SEND_THRESHOLD: u8 = 75;
/// Default `COPYDESK_ESCALATE_THRESHOLD`.
pub const DEFAULT_ESCALATE_THRESHOLD: u8 = 40;

/// Default safety words (`COPYDESK_SAFETY_WORDS` replaces them).
pub const DEFAULT_SAFETY_WORDS: &[&str] = &[
    "leak",
    "leaks",
    "leaking",
    "leaked",
    "leakage",
    "fuel leak",
    "gas leak",
    "brake",
    "brakes",
    "braking",
    "brake failure",
    "fire",
    "flames",
    "smoke",
    "smoking",
    "burning",
    "burning smell",
    "gas smell",
    "smell of gas",
    "smells of gas",
    "smell gas",
    "fuel smell",
    "smell fuel",
    "smell of fuel",
    "fumes",
    "explosion",
    "exploded",
    "injured",
    "injury",
    "accident",
    "crash",
    // German, Spanish, French and Portuguese, for customers who write in their own language
    // (the eval set's `language` cases). Not "brand" (German fire): it is an English word.
    "undicht",
    "leck",
    "leckt",
    "riecht nach benzin",
    "benzingeruch",
    "feuer",
    "rauch",
    "bremse",
    "bremsen",
    "verletzt",
    "unfall",
    "fuga",
    "gotea",
    "olor a gasolina",
    "incendio",
    "fuego",
    "humo",
    "frenos",
    "herido",
    "accidente",
    "fuite",
    "fuit",
    "odeur d'essence",
    "incendie",
    "fumée",
    "freins",
    "blessé",
    "vazamento",
    "vazando",
    "cheiro de gasolina",
    "incêndio",
    "fumaça",
    "freios",
];

/// Default VIP attribute names (`COPYDESK_VIP_ATTRIBUTES` replaces them): **none**.
///
/// Chatwoot lets a web-widget visitor set their own contact's custom attributes
/// (`window.$chatwoot.setCustomAttributes`), the conversation's custom attributes
/// (`setConversationCustomAttributes`) and, through `setUser`, parts of the contact's
/// additional attributes, whether or not HMAC identity validation is on. So no attribute
/// name is trustworthy by default: a visitor who writes `vip: true` must not jump the queue.
/// List only attributes that your own systems write (a CRM sync through the API) on inboxes
/// whose visitors cannot write them (API, email, or a widget whose site never calls those
/// SDK methods with visitor input).
pub const DEFAULT_VIP_ATTRIBUTES: &[&str] = &[];

/// Default referral phrases (`COPYDESK_REFERRAL_PHRASES` replaces them): when the knowledge
/// a draft relies on says one of these, the question is out of the shop's scope.
pub const DEFAULT_REFERRAL_PHRASES: &[&str] = &[
    "don't give",
    "do not give",
    "don't provide",
    "do not provide",
    "can't advise",
    "cannot advise",
    "not able to advise",
    "unable to advise",
    "don't advise",
    "do not advise",
    "must be designed by",
    "should be designed by",
    "consult a professional",
    "by a professional",
    "contact a professional",
    "call a professional",
    "see a professional",
    "outside our scope",
    "outside the scope",
    "beyond our",
    "beyond the scope",
];

/// Thresholds and word lists of the classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftPolicy {
    /// Confidence at or above which a draft may be sent as is.
    pub send_threshold: u8,
    /// Confidence below which a draft is escalated.
    pub escalate_threshold: u8,
    safety_words: Vec<Phrase>,
    referral_phrases: Vec<Phrase>,
    vip_attributes: Vec<String>,
}

impl Default for DraftPolicy {
    fn default() -> Self {
        Self::new(
            DEFAULT_SEND_THRESHOLD,
            DEFAULT_ESCALATE_THRESHOLD,
            DEFAULT_SAFETY_WORDS.iter().copied(),
            DEFAULT_VIP_ATTRIBUTES.iter().copied(),
        )
    }
}

/// A comma-separated list variable, or `None` when unset.
fn list(env: &dyn EnvSource, var: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(value) = env.get(var) else {
        return Ok(None);
    };
    let items: Vec<String> = value
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        return Err(ConfigError::Invalid {
            var,
            value,
            reason: "expected a comma-separated list".into(),
        });
    }
    Ok(Some(items))
}

impl DraftPolicy {
    /// A policy with the given thresholds and lists (referral phrases are the defaults).
    pub fn new<'a>(
        send_threshold: u8,
        escalate_threshold: u8,
        safety_words: impl IntoIterator<Item = &'a str>,
        vip_attributes: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self {
            send_threshold,
            escalate_threshold,
            safety_words: phrases(safety_words),
            referral_phrases: phrases(DEFAULT_REFERRAL_PHRASES.iter().copied()),
            vip_attributes: vip_attributes
                .into_iter()
                .map(|a| a.trim().to_lowercase())
                .filter(|a| !a.is_empty())
                .collect(),
        }
    }

    /// Replaces the referral phrases.
    pub fn with_referral_phrases<'a>(mut self, list: impl IntoIterator<Item = &'a str>) -> Self {
        self.referral_phrases = phrases(list);
        self
    }

    /// Reads `COPYDESK_SEND_THRESHOLD` (default 75), `COPYDESK_ESCALATE_THRESHOLD` (default
    /// 40; must not exceed the send threshold), and the comma-separated lists
    /// `COPYDESK_SAFETY_WORDS`, `COPYDESK_VIP_ATTRIBUTES` and `COPYDESK_REFERRAL_PHRASES`
    /// (each replaces its default list).
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let send: u8 = parsed_or(env, "COPYDESK_SEND_THRESHOLD", DEFAULT_SEND_THRESHOLD)?;
        if send > 100 {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_SEND_THRESHOLD",
                value: send.to_string(),
                reason: "expected a confidence from 0 to 100".into(),
            });
        }
        let escalate: u8 = parsed_or(
            env,
            "COPYDESK_ESCALATE_THRESHOLD",
            DEFAULT_ESCALATE_THRESHOLD,
        )?;
        if escalate > send {
            return Err(ConfigError::Invalid {
                var: "COPYDESK_ESCALATE_THRESHOLD",
                value: escalate.to_string(),
                reason: format!("must not exceed COPYDESK_SEND_THRESHOLD ({send})"),
            });
        }
        let safety = list(env, "COPYDESK_SAFETY_WORDS")?;
        let vip = list(env, "COPYDESK_VIP_ATTRIBUTES")?;
        let referral = list(env, "COPYDESK_REFERRAL_PHRASES")?;
        let mut policy = Self {
            send_threshold: send,
            escalate_threshold: escalate,
            ..Self::default()
        };
        if let Some(safety) = safety {
            policy.safety_words = phrases(safety.iter().map(String::as_str));
        }
        if let Some(vip) = vip {
            policy.vip_attributes = vip.iter().map(|a| a.to_lowercase()).collect();
        }
        if let Some(referral) = referral {
            policy.referral_phrases = phrases(referral.iter().map(String::as_str));
        }
        Ok(policy)
    }

    /// The same policy, trusting `attributes` (names, case-insensitive) to flag a VIP.
    pub fn with_vip_attributes<'a>(
        mut self,
        attributes: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        self.vip_attributes = attributes.into_iter().map(str::to_lowercase).collect();
        self
    }

    /// The safety words found in `texts` (the message and the customer's recent messages).
    pub fn safety_matches<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        for text in texts {
            for word in matches_with_typos(&self.safety_words, &words(text)) {
                if !found.iter().any(|f| f == word) {
                    found.push(word.to_owned());
                }
            }
        }
        found
    }

    /// The referral phrases `text` contains.
    pub fn referral_matches(&self, text: &str) -> Vec<String> {
        matches(&self.referral_phrases, &words(text))
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// True when either attribute map flags the customer as VIP (see the module doc).
    pub fn is_vip(&self, maps: &[&serde_json::Map<String, serde_json::Value>]) -> bool {
        maps.iter().any(|map| {
            map.iter().any(|(name, value)| {
                self.vip_attributes
                    .iter()
                    .any(|a| *a == name.to_lowercase())
                    && vip_value(value)
            })
        })
    }

    /// The advised action (see the module doc).
    pub fn action(&self, confidence: u8, safety: bool, has_knowledge: bool) -> Action {
        let by_confidence = if !has_knowledge || confidence < self.escalate_threshold {
            Action::Escalate
        } else if confidence >= self.send_threshold {
            Action::Send
        } else {
            Action::Review
        };
        match by_confidence {
            Action::Send if safety => Action::Review,
            other => other,
        }
    }

    /// True when `message` asks or requests something: a question (`?` or a question word
    /// first) or a request word (`please`, `need`, `want`, `send`, …). A reply to anything
    /// else (thanks, a status report) is never recommended for sending as is.
    pub fn asks_something(&self, message: &str) -> bool {
        super::intent::asks_something(message)
    }

    /// The priority (see the module doc).
    pub fn priority(
        &self,
        message: &str,
        safety: bool,
        vip: bool,
        sentiment: Sentiment,
    ) -> Priority {
        if safety {
            Priority::Urgent
        } else if vip || sentiment == Sentiment::Angry {
            Priority::High
        } else if super::intent::can_wait(message) && sentiment != Sentiment::Negative {
            Priority::Low
        } else {
            Priority::Normal
        }
    }
}

fn vip_value(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        serde_json::Value::String(s) => {
            let lower = s.trim().to_lowercase();
            matches!(lower.as_str(), "true" | "yes" | "1")
                || words(&lower).iter().any(|w| w == "vip")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn map(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn actions_follow_thresholds_and_the_safety_override() {
        let policy = DraftPolicy::default();
        assert_eq!(policy.action(75, false, true), Action::Send);
        assert_eq!(policy.action(74, false, true), Action::Review);
        assert_eq!(policy.action(40, false, true), Action::Review);
        assert_eq!(policy.action(39, false, true), Action::Escalate);
        assert_eq!(policy.action(95, true, true), Action::Review);
        assert_eq!(policy.action(10, true, true), Action::Escalate);
        assert_eq!(policy.action(95, false, false), Action::Escalate);
    }

    #[test]
    fn safety_words_match_whole_words_only() {
        let policy = DraftPolicy::default();
        assert_eq!(
            policy.safety_matches(["My AN fittings are LEAKING at the carburetor."]),
            vec!["leaking"]
        );
        assert!(policy
            .safety_matches(["Is the leakproof cap in stock?"])
            .is_empty());
        assert_eq!(
            policy.safety_matches(["there is a gas smell"]),
            vec!["gas smell"]
        );
    }

    #[test]
    fn no_attribute_a_visitor_can_set_makes_a_vip_by_default() {
        let policy = DraftPolicy::default();
        let none = map(json!({}));
        for claimed in [
            json!({"vip": true}),
            json!({"tier": "VIP"}),
            json!({"is_vip": 1}),
        ] {
            assert!(!policy.is_vip(&[&map(claimed.clone()), &none]), "{claimed}");
            assert!(!policy.is_vip(&[&none, &map(claimed.clone())]), "{claimed}");
        }
        let env = std::collections::HashMap::from([(
            "COPYDESK_VIP_ATTRIBUTES".to_owned(),
            "crm_tier".to_owned(),
        )]);
        let trusted = DraftPolicy::from_env(&env).expect("policy");
        assert!(trusted.is_vip(&[&map(json!({"crm_tier": "VIP"})), &none]));
        assert!(!trusted.is_vip(&[&map(json!({"vip": true})), &none]));
    }

    #[test]
    fn vip_flags_are_recognised_in_either_map() {
        let policy = DraftPolicy::default().with_vip_attributes(["vip", "tier", "plan", "is_vip"]);
        let none = map(json!({}));
        for vip in [
            json!({"vip": true}),
            json!({"Tier": "VIP"}),
            json!({"plan": "vip gold"}),
            json!({"is_vip": 1}),
        ] {
            assert!(policy.is_vip(&[&none, &map(vip.clone())]), "{vip}");
        }
        for not in [
            json!({"vip": false}),
            json!({"tier": "gold"}),
            json!({"note": "vip"}),
            json!({"plan": "vipers"}),
        ] {
            assert!(!policy.is_vip(&[&map(not.clone()), &none]), "{not}");
        }
    }

    #[test]
    fn priority_follows_the_seed_safety_vip_anger_then_what_can_wait() {
        let policy = DraftPolicy::default();
        let p = |m: &str, safety, vip, s| policy.priority(m, safety, vip, s);
        use Sentiment::{Angry, Negative, Neutral, Positive};
        assert_eq!(p("brakes?", true, true, Neutral), Priority::Urgent);
        assert_eq!(p("hours?", false, true, Neutral), Priority::High);
        assert_eq!(
            p("Where is my order?!", false, false, Angry),
            Priority::High
        );
        // The seed: a plain product question, however well answered, is normal.
        assert_eq!(
            p("What does AN-6 mean in inches?", false, false, Neutral),
            Priority::Normal
        );
        assert_eq!(
            p("Send me a catalogue.", false, false, Neutral),
            Priority::Normal
        );
        assert_eq!(
            p("Thanks, that worked!", false, false, Positive),
            Priority::Low
        );
        assert_eq!(
            p(
                "No rush, but do you stock AN-12 unions?",
                false,
                false,
                Neutral
            ),
            Priority::Low
        );
        assert_eq!(
            p("thanks but it still leaks", false, false, Negative),
            Priority::Normal
        );
        assert_eq!(
            p("Thanks. Please cancel my order", false, false, Neutral),
            Priority::Normal
        );
        assert_eq!(
            p("Parcel received, thank you so much", false, false, Positive),
            Priority::Low
        );
    }

    #[test]
    fn only_messages_that_ask_something_can_be_answered_as_is() {
        let policy = DraftPolicy::default();
        for asks in [
            "What does AN-6 mean?",
            "how long shiping takes",
            "I need a return label",
            "Please send the invoice again",
            "I'd like to know the shipping cost",
        ] {
            assert!(policy.asks_something(asks), "{asks}");
        }
        for not in [
            "Thanks, that worked!",
            "Parcel received, thank you so much",
            "ok",
        ] {
            assert!(!policy.asks_something(not), "{not}");
        }
    }

    #[test]
    fn config_reads_thresholds_and_lists_and_names_bad_variables() {
        let env: HashMap<String, String> = [
            ("COPYDESK_SEND_THRESHOLD", "80"),
            ("COPYDESK_ESCALATE_THRESHOLD", "30"),
            ("COPYDESK_SAFETY_WORDS", "sparks, hot wire"),
            ("COPYDESK_VIP_ATTRIBUTES", "Gold"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let policy = DraftPolicy::from_env(&env).expect("valid");
        assert_eq!((policy.send_threshold, policy.escalate_threshold), (80, 30));
        assert_eq!(policy.safety_matches(["a HOT wire"]), vec!["hot wire"]);
        assert!(policy.safety_matches(["a leak"]).is_empty());
        assert!(policy.is_vip(&[&map(json!({"gold": true}))]));

        for (var, value) in [
            ("COPYDESK_SEND_THRESHOLD", "high"),
            ("COPYDESK_SEND_THRESHOLD", "101"),
            ("COPYDESK_ESCALATE_THRESHOLD", "90"),
            ("COPYDESK_SAFETY_WORDS", " , "),
        ] {
            let env: HashMap<String, String> =
                [(var.to_owned(), value.to_owned())].into_iter().collect();
            let err = DraftPolicy::from_env(&env).expect_err("invalid");
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
