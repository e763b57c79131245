//! The extractive drafter: an offline reply made of the knowledge's own sentences.
//!
//! 1. Rank passages by `relevance · (0.5 + 0.5 · coverage) + 0.25 · heading coverage`, where
//!    coverage is the share of the question's terms a passage contains, so the FAQ-style
//!    passage whose heading matches the question wins among similar hits.
//! 2. From the best passage, quote up to [`MAX_ANSWER_UNITS`] sentences or list items that
//!    share the most terms with the question (in their original order); add the best unit of
//!    a runner-up passage when it covers question terms the quote does not.
//!    An operator's earlier answer ("answered before") that ranks first with relevance ≥
//!    0.8 is reused whole instead.
//! 3. With safety words, the reply opens with the safety steps from the passages
//!    (see [`super::safety_steps`]).
//! 4. The reply holds only what the customer should read: the passages it used are
//!    returned for the note and the approval item, not quoted as sources in the text.

use copydesk::jobs::Passage;

use super::request::DraftRequest;
use super::safety_steps::safety_block;
use super::units::{units, Unit};
use crate::knowledge::analysis::content_terms;
use crate::knowledge::answered_before::is_answered_before;

/// Most sentences quoted from the best passage.
pub(crate) const MAX_ANSWER_UNITS: usize = 3;

/// An operator's earlier answer at least this relevant is reused whole (see
/// [`crate::knowledge::answered_before`]).
const REUSE_RELEVANCE: f32 = 0.8;

/// A runner-up passage is quoted only if it ranks at least this fraction of the best.
const RUNNER_UP_RATIO: f32 = 0.6;

/// What a backend wrote, before classification.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Composition {
    /// The reply.
    pub(crate) text: String,
    /// Indexes of the passages the reply relies on (the safety passage first, if any).
    pub(crate) used: Vec<usize>,
    /// The text that answers the question (not the safety steps), checked for referrals.
    pub(crate) answer: String,
    /// The backend stopped before the reply was complete (LLM token limit).
    pub(crate) truncated: bool,
}

/// The offline drafter (default backend).
#[derive(Debug, Clone, Default)]
pub struct ExtractiveDrafter;

struct Ranked {
    index: usize,
    score: f32,
}

fn overlap(terms: &[String], text: &str) -> usize {
    let found = content_terms(text);
    terms.iter().filter(|t| found.contains(t)).count()
}

impl ExtractiveDrafter {
    /// The extractive drafter.
    pub fn new() -> Self {
        Self
    }

    /// Writes the reply for `request`; with safety words found (`safety`, non-empty), it
    /// opens with safety steps.
    pub(crate) fn compose(&self, request: &DraftRequest, safety: &[String]) -> Composition {
        let terms = content_terms(&request.question());
        let mut used = Vec::new();
        let mut sections = Vec::new();
        let mut skip_units: Vec<String> = Vec::new();

        if !safety.is_empty() {
            let block = safety_block(&request.passages, safety);
            if let Some(index) = block.passage {
                used.push(index);
            }
            skip_units.extend(block.steps.iter().cloned());
            sections.push(block.render());
            sections.push("Thanks for letting us know.".to_owned());
        } else {
            sections.push("Hello,\n\nThanks for your message.".to_owned());
        }

        let ranked = rank(&terms, &request.passages);
        if let Some(index) = reusable_answer(&ranked, &request.passages) {
            // An operator already answered this question: reuse their final text whole.
            if !used.contains(&index) {
                used.push(index);
            }
            let reply = request.passages[index].text.clone();
            let text = match (safety.is_empty(), sections.first()) {
                (false, Some(block)) => format!("{block}\n\n{reply}"),
                _ => reply.clone(),
            };
            return Composition {
                text,
                used,
                answer: reply,
                truncated: false,
            };
        }
        // A message that asks several things ("how do I return it, and when do I get my
        // refund?") gets each question answered from its own best passage.
        let questions = split_questions(&request.message);
        let parts: Vec<Vec<String>> = if questions.len() > 1 {
            questions.iter().map(|q| content_terms(q)).collect()
        } else {
            vec![terms]
        };
        let max_units = if parts.len() > 1 { 2 } else { MAX_ANSWER_UNITS };
        let mut answer_units: Vec<String> = Vec::new();
        for part in &parts {
            let ranked = rank(part, &request.passages);
            let mut skip = skip_units.clone();
            skip.extend(answer_units.iter().cloned());
            for (index, unit) in answer_from(part, &ranked, &request.passages, &skip, max_units) {
                if !used.contains(&index) {
                    used.push(index);
                }
                answer_units.push(unit);
            }
        }

        let answer = answer_units.join(" ");
        if answer.is_empty() {
            sections.push(
                "We are looking into your question, and a member of our team will get back to \
                 you shortly."
                    .to_owned(),
            );
        } else {
            sections.push(answer.clone());
            sections.push(
                "If anything is unclear, just reply to this message and we will be glad to help."
                    .to_owned(),
            );
        }
        // Sources are listed in the private note and the approval item, never in the reply.
        Composition {
            text: sections.join("\n\n"),
            used,
            answer,
            truncated: false,
        }
    }
}

/// Up to `max` units from the best-ranked passage for `terms`, plus the best unit of a
/// runner-up passage when it covers terms the quote does not: `(passage index, unit text)`.
fn answer_from(
    terms: &[String],
    ranked: &[Ranked],
    passages: &[Passage],
    skip: &[String],
    max: usize,
) -> Vec<(usize, String)> {
    let Some(best) = ranked.first() else {
        return Vec::new();
    };
    let mut out: Vec<(usize, String)> = pick_units(terms, &passages[best.index], skip, max)
        .into_iter()
        .map(|u| (best.index, u.text))
        .collect();
    let quoted = content_terms(
        &out.iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );
    let missing: Vec<String> = terms
        .iter()
        .filter(|t| !quoted.contains(t))
        .cloned()
        .collect();
    if missing.is_empty() {
        return out;
    }
    let runner_up = ranked
        .iter()
        .skip(1)
        .filter(|r| r.score >= best.score * RUNNER_UP_RATIO)
        .find(|r| overlap(&missing, &passages[r.index].text) > 0);
    if let Some(runner_up) = runner_up {
        if let Some(unit) = pick_units(&missing, &passages[runner_up.index], skip, 1)
            .into_iter()
            .next()
        {
            out.push((runner_up.index, unit.text));
        }
    }
    out
}

/// Words that open a question after "and" or a comma ("…, and when do I get my refund?").
const QUESTION_WORDS: &[&str] = &[
    "how", "when", "what", "where", "which", "who", "why", "do", "does", "did", "can", "could",
    "is", "are", "will", "would", "should", "also",
];

/// The questions of a message: split at `?`, and at ", and" / "and" / "also" when a
/// question word follows; a part without content terms ("hi!", "quick one?") joins its
/// neighbour. One part for a message that asks one thing.
pub(crate) fn split_questions(message: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let words: Vec<&str> = message.split_whitespace().collect();
    for (i, word) in words.iter().enumerate() {
        let bare = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        let next = words.get(i + 1).map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        });
        let next_asks = next.as_deref().is_some_and(|n| QUESTION_WORDS.contains(&n));
        let joins = (bare == "and" && next_asks) || (bare == "also" && !current.is_empty());
        if joins && !current.is_empty() {
            parts.push(current.join(" "));
            current.clear();
            if bare == "and" {
                continue;
            }
        }
        current.push(word);
        if word.ends_with('?') {
            parts.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        parts.push(current.join(" "));
    }
    let mut merged: Vec<String> = Vec::new();
    for part in parts {
        match merged.last_mut() {
            Some(last) if content_terms(&part).is_empty() => {
                last.push(' ');
                last.push_str(&part);
            }
            _ => merged.push(part),
        }
    }
    if merged.len() > 1 && content_terms(&merged[0]).is_empty() {
        let first = merged.remove(0);
        merged[0] = format!("{first} {}", merged[0]);
    }
    merged
}

/// The best-ranked passage when it is an operator's earlier answer to a near-identical
/// question (relevance at least [`REUSE_RELEVANCE`]).
fn reusable_answer(ranked: &[Ranked], passages: &[Passage]) -> Option<usize> {
    let best = ranked.first()?;
    let passage = &passages[best.index];
    (is_answered_before(passage) && passage.relevance >= REUSE_RELEVANCE).then_some(best.index)
}

/// Passages that share at least one term with the question, best first.
fn rank(terms: &[String], passages: &[Passage]) -> Vec<Ranked> {
    if terms.is_empty() {
        return Vec::new();
    }
    let mut ranked: Vec<Ranked> = passages
        .iter()
        .enumerate()
        .filter_map(|(index, p)| {
            let body = overlap(terms, &format!("{}\n{}", p.title, p.text));
            if body == 0 {
                return None;
            }
            let heading = overlap(terms, &p.title);
            let n = terms.len() as f32;
            let score = p.relevance * (0.5 + 0.5 * body as f32 / n) + 0.25 * heading as f32 / n;
            Some(Ranked { index, score })
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    ranked
}

/// Up to `max` units of `passage` sharing the most terms with `terms` (at least one), in
/// passage order, skipping `skip`.
fn pick_units(terms: &[String], passage: &Passage, skip: &[String], max: usize) -> Vec<Unit> {
    // A unit ending in ':' introduces a list and reads as a fragment on its own.
    let all: Vec<Unit> = units(&passage.text)
        .into_iter()
        .filter(|u| !skip.contains(&u.text) && !u.text.ends_with(':'))
        .collect();
    let mut scored: Vec<(usize, usize)> = all
        .iter()
        .enumerate()
        .map(|(i, u)| (i, overlap(terms, &u.text)))
        .filter(|(_, score)| *score > 0)
        .collect();
    scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut keep: Vec<usize> = scored.into_iter().take(max).map(|(i, _)| i).collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| all[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::split_questions;

    #[test]
    fn a_message_is_split_into_its_questions() {
        assert_eq!(
            split_questions("How do I return an unused fitting and when do I get my refund?"),
            vec![
                "How do I return an unused fitting",
                "when do I get my refund?"
            ]
        );
        assert_eq!(
            split_questions("Do you take bank transfer? Also how much does express shipping cost?"),
            vec![
                "Do you take bank transfer?",
                "Also how much does express shipping cost?"
            ]
        );
        assert_eq!(
            split_questions("What does AN-6 mean in inches?"),
            vec!["What does AN-6 mean in inches?"]
        );
        assert_eq!(
            split_questions("red and blue fittings, black and silver hose"),
            vec!["red and blue fittings, black and silver hose"],
            "'and' without a question word after it does not split"
        );
    }
}
