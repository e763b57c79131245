//! The safety block a draft opens with when the customer's words suggest danger: the steps
//! from the most relevant knowledge passage that is about safety, or a generic instruction
//! when no passage has steps.

use copydesk::jobs::Passage;

use super::lexicon::{phrases, words};
use super::units::{units, UnitKind};

/// Most steps quoted.
const MAX_STEPS: usize = 8;

/// First line of every safety block.
pub const SAFETY_HEADING: &str = "Safety first: please do this before anything else.";

/// Used when no passage has safety steps.
pub const GENERIC_SAFETY_STEP: &str = "Stop using the vehicle and do not drive it until the \
problem has been inspected; if anyone is at risk, move away and call the emergency services.";

/// The safety block and the passage it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SafetyBlock {
    /// Index in the request's passages, if the steps came from one.
    pub(crate) passage: Option<usize>,
    /// The steps, as quoted.
    pub(crate) steps: Vec<String>,
}

impl SafetyBlock {
    /// The block as reply text (heading plus numbered steps).
    pub(crate) fn render(&self) -> String {
        let mut text = String::from(SAFETY_HEADING);
        for (n, step) in self.steps.iter().enumerate() {
            text.push_str(&format!("\n{}. {step}", n + 1));
        }
        text
    }
}

/// Words that mark a passage as emergency instructions when its title or first sentence
/// has them (in addition to the safety words the customer used).
const EMERGENCY_WORDS: &[&str] = &["emergency", "danger", "dangerous", "warning", "immediately"];

/// Finds the steps: the best-ranked passage with list items whose title (or first sentence)
/// says "safe…"; failing that, one whose title or first sentence has an emergency word or one
/// of the safety words the customer used (`matched`).
pub(crate) fn safety_block(passages: &[Passage], matched: &[String]) -> SafetyBlock {
    let matched = phrases(matched.iter().map(String::as_str));
    let says_safety = |text: &[String]| text.iter().any(|w| w.starts_with("safe"));
    let says_emergency = |text: &[String]| {
        text.iter().any(|w| EMERGENCY_WORDS.contains(&w.as_str()))
            || matched.iter().any(|p| p.occurs_in(text))
    };
    steps_from(passages, &says_safety)
        .or_else(|| steps_from(passages, &says_emergency))
        .unwrap_or_else(|| SafetyBlock {
            passage: None,
            steps: vec![GENERIC_SAFETY_STEP.to_owned()],
        })
}

fn steps_from(passages: &[Passage], marks: &dyn Fn(&[String]) -> bool) -> Option<SafetyBlock> {
    for (index, passage) in passages.iter().enumerate() {
        let parts = units(&passage.text);
        let about_safety =
            marks(&words(&passage.title)) || parts.first().is_some_and(|u| marks(&words(&u.text)));
        let steps: Vec<String> = parts
            .into_iter()
            .filter(|u| u.kind == UnitKind::ListItem)
            .map(|u| u.text)
            .take(MAX_STEPS)
            .collect();
        if about_safety && !steps.is_empty() {
            return Some(SafetyBlock {
                passage: Some(index),
                steps,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(title: &str, text: &str) -> Passage {
        Passage {
            source: format!("{title}.md"),
            title: title.into(),
            text: text.into(),
            relevance: 0.9,
        }
    }

    #[test]
    fn steps_come_from_a_safety_passage_then_an_emergency_one_then_a_generic_line() {
        let overview = passage(
            "Overview",
            "Gas appliances need service.\n\n- Book a visit.",
        );
        let smell = passage(
            "If you smell gas",
            "Act now:\n\n1. Open the windows.\n2. Leave the house.",
        );
        let safety = passage("Safety steps", "1. Turn off the supply.");

        let block = safety_block(&[overview.clone(), smell.clone(), safety], &[]);
        assert_eq!(
            (block.passage, block.steps[0].as_str()),
            (Some(2), "Turn off the supply.")
        );

        let block = safety_block(&[overview.clone(), smell], &["smell gas".to_owned()]);
        assert_eq!(block.passage, Some(1));
        assert_eq!(block.steps, vec!["Open the windows.", "Leave the house."]);
        assert!(block.render().starts_with(SAFETY_HEADING));

        let block = safety_block(&[overview], &[]);
        assert_eq!((block.passage, block.steps.len()), (None, 1));
    }
}
