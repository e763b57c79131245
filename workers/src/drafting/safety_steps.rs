//! The safety block a draft opens with when the customer's words suggest danger: the steps
//! from the most relevant knowledge passage that is about safety, or a generic instruction
//! when no passage has steps.

use copydesk::jobs::Passage;

use super::lexicon::words;
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

/// Finds the steps: the best-ranked passage whose title says "safety" (or whose first
/// sentence does) and which has list items.
pub(crate) fn safety_block(passages: &[Passage]) -> SafetyBlock {
    for (index, passage) in passages.iter().enumerate() {
        let parts = units(&passage.text);
        let about_safety = words(&passage.title).iter().any(|w| w.starts_with("safe"))
            || parts
                .first()
                .is_some_and(|u| words(&u.text).iter().any(|w| w.starts_with("safe")));
        let steps: Vec<String> = parts
            .into_iter()
            .filter(|u| u.kind == UnitKind::ListItem)
            .map(|u| u.text)
            .take(MAX_STEPS)
            .collect();
        if about_safety && !steps.is_empty() {
            return SafetyBlock {
                passage: Some(index),
                steps,
            };
        }
    }
    SafetyBlock {
        passage: None,
        steps: vec![GENERIC_SAFETY_STEP.to_owned()],
    }
}
