//! Confidence: how well the knowledge a draft relies on backs it, 0–100.
//!
//! ```text
//! confidence = 100 · MAX_CONFIDENCE · sqrt(retrieval) · coverage · penalties
//! ```
//!
//! - `retrieval`: the best relevance (0..=1) among the passages the draft uses;
//! - `coverage`: the share of the question's content terms (see
//!   [`crate::knowledge::analysis::content_terms`]) found in those passages (title and text);
//! - the product makes both necessary: a strong passage that answers only part of the
//!   question, or a passage that mentions every word but ranks low, both score low; coverage
//!   weighs more (square root on retrieval) because a reply that leaves part of the question
//!   unanswered needs a person more than one drawn from a slightly weaker match;
//! - penalties: × [`DEGRADED_FACTOR`] when the knowledge lookup failed, × [`REFERRAL_FACTOR`]
//!   when the knowledge used says the question is out of scope (refers the customer to a
//!   professional or declines to advise), so such drafts fall below the escalate threshold;
//! - no passages, or a question without content terms → 0.
//!
//! Nothing here depends on a particular question: the same inputs always give the same
//! number.

use std::collections::HashSet;

use copydesk::jobs::Passage;

use crate::knowledge::analysis::{analysed_part, content_terms};

/// A draft is never fully certain: the highest confidence is 95.
pub const MAX_CONFIDENCE: f32 = 0.95;

/// Multiplier when the knowledge lookup was degraded.
pub const DEGRADED_FACTOR: f32 = 0.5;

/// Multiplier when the knowledge used says the question is out of scope.
pub const REFERRAL_FACTOR: f32 = 0.4;

/// The parts of a confidence, kept for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfidenceInputs {
    /// Best relevance among the used passages.
    pub retrieval: f32,
    /// Share of the question's terms the used passages contain.
    pub coverage: f32,
    /// Knowledge lookup failed.
    pub degraded: bool,
    /// The knowledge declines or refers the question elsewhere.
    pub out_of_scope: bool,
}

impl ConfidenceInputs {
    /// Measures `retrieval` and `coverage` of `used` passages for `question` (its
    /// [`analysed_part`]); linear in the texts' lengths.
    pub fn measure(question: &str, used: &[&Passage], degraded: bool, out_of_scope: bool) -> Self {
        let terms = content_terms(analysed_part(question));
        let retrieval = used
            .iter()
            .map(|p| p.relevance.clamp(0.0, 1.0))
            .fold(0.0_f32, f32::max);
        let coverage = if terms.is_empty() || used.is_empty() {
            0.0
        } else {
            let known: HashSet<String> = used
                .iter()
                .flat_map(|p| content_terms(&format!("{}\n{}", p.title, p.text)))
                .collect();
            let covered = terms.iter().filter(|t| known.contains(t.as_str())).count();
            covered as f32 / terms.len() as f32
        };
        Self {
            retrieval,
            coverage,
            degraded,
            out_of_scope,
        }
    }

    /// The confidence, 0–100.
    pub fn score(&self) -> u8 {
        let mut value = self.retrieval.sqrt() * self.coverage * MAX_CONFIDENCE;
        if self.degraded {
            value *= DEGRADED_FACTOR;
        }
        if self.out_of_scope {
            value *= REFERRAL_FACTOR;
        }
        (value * 100.0).round().clamp(0.0, 100.0) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(title: &str, text: &str, relevance: f32) -> Passage {
        Passage {
            source: "x.md".into(),
            title: title.into(),
            text: text.into(),
            relevance,
        }
    }

    #[test]
    fn full_coverage_and_strong_retrieval_is_confident() {
        let p = passage("What does AN-6 mean?", "AN-6 = 3/8 inch.", 0.95);
        let inputs =
            ConfidenceInputs::measure("What does AN-6 mean in inches?", &[&p], false, false);
        assert_eq!(inputs.coverage, 1.0);
        assert!(inputs.score() >= 85, "{inputs:?}");
    }

    #[test]
    fn partial_coverage_weak_retrieval_and_penalties_lower_confidence() {
        let p = passage("Shipping", "Standard shipping takes 2 to 4 days.", 0.9);
        let full = ConfidenceInputs::measure("shipping days", &[&p], false, false).score();
        let partial =
            ConfidenceInputs::measure("shipping days to Mars", &[&p], false, false).score();
        let weak = ConfidenceInputs::measure(
            "shipping days",
            &[&passage("S", "shipping days", 0.2)],
            false,
            false,
        )
        .score();
        let degraded = ConfidenceInputs::measure("shipping days", &[&p], true, false).score();
        let referral = ConfidenceInputs::measure("shipping days", &[&p], false, true).score();
        assert!(partial < full && weak < full && degraded < full && referral < full);
        assert_eq!(
            ConfidenceInputs::measure("shipping days", &[], false, false).score(),
            0
        );
    }
}
