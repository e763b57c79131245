//! "Answered before": operators' final replies as retrievable passages.
//!
//! Built from learning records ([`copydesk::learning::LearningRecord`]): an approved draft,
//! an edited reply or an operator's own reply on a rejection becomes a passage whose text is
//! the operator's **final** text (never the unedited draft of a rejected item; escalations
//! and placeholders teach nothing). A later message is matched against the earlier
//! customer messages by their content terms; a passage is titled
//! `Answered before: <earlier message>` and its source is `answered-before#<approval id>`, so
//! the operator sees in the note that the draft reuses an earlier answer.

use copydesk::learning::LearningRecord;

use super::analysis::content_terms;
use super::Passage;

/// Source prefix of every answered-before passage.
pub const ANSWERED_BEFORE_SOURCE: &str = "answered-before#";

/// Title prefix of every answered-before passage.
pub const ANSWERED_BEFORE_TITLE: &str = "Answered before: ";

/// Matches weaker than this (share of terms in common) are not returned.
const MIN_SIMILARITY: f32 = 0.5;

/// Relevance of an exact match: a past answer is strong evidence, not certainty.
const MAX_RELEVANCE: f32 = 0.95;

/// One earlier question and the operator's final reply.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    id: String,
    question: String,
    terms: Vec<String>,
    reply: String,
}

/// The operators' earlier answers, searchable by question.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnsweredBefore {
    answers: Vec<Answer>,
}

impl AnsweredBefore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the operator's final reply to `question` (later answers to the same question
    /// replace earlier ones).
    pub fn add(&mut self, id: impl Into<String>, question: &str, reply: &str) {
        let terms = content_terms(question);
        if terms.is_empty() || reply.trim().is_empty() {
            return;
        }
        self.answers.retain(|a| a.terms != terms);
        self.answers.push(Answer {
            id: id.into(),
            question: question.trim().to_owned(),
            terms,
            reply: reply.trim().to_owned(),
        });
    }

    /// Adds what `record` teaches: its final text when it was approved, edited, or rejected
    /// with the operator's own reply (not placeholders, escalations or bare rejections).
    pub fn learn(&mut self, record: &LearningRecord) {
        if record.placeholder {
            return;
        }
        let teaches = matches!(record.decision.as_str(), "approve" | "edit" | "reject");
        if let (true, Some(text)) = (teaches, record.final_text.as_deref()) {
            self.add(&record.approval_id, &record.customer_message, text);
        }
    }

    /// [`AnsweredBefore::learn`], then drops the oldest answers beyond `max_answers`.
    pub fn learn_bounded(&mut self, record: &LearningRecord, max_answers: usize) {
        self.learn(record);
        let excess = self.answers.len().saturating_sub(max_answers);
        self.answers.drain(..excess);
    }

    /// A store of every record's lesson.
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a LearningRecord>) -> Self {
        let mut store = Self::new();
        for record in records {
            store.learn(record);
        }
        store
    }

    /// How many answers are stored.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// True when nothing was learned yet.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Up to `top_k` earlier answers to questions like `message`, best first. Similarity is
    /// the share of terms the two questions have in common (of the larger term set).
    pub fn search(&self, message: &str, top_k: usize) -> Vec<Passage> {
        let terms = content_terms(message);
        if terms.is_empty() {
            return Vec::new();
        }
        let mut found: Vec<(f32, &Answer)> = self
            .answers
            .iter()
            .filter_map(|a| {
                let common = terms.iter().filter(|t| a.terms.contains(t)).count();
                let similarity = common as f32 / terms.len().max(a.terms.len()) as f32;
                (similarity >= MIN_SIMILARITY).then_some((similarity, a))
            })
            .collect();
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        found
            .into_iter()
            .take(top_k)
            .map(|(similarity, a)| Passage {
                title: format!("{ANSWERED_BEFORE_TITLE}{}", a.question),
                source: format!("{ANSWERED_BEFORE_SOURCE}{}", a.id),
                text: a.reply.clone(),
                relevance: similarity * MAX_RELEVANCE,
            })
            .collect()
    }
}

/// True for a passage that is an operator's earlier answer.
pub fn is_answered_before(passage: &Passage) -> bool {
    passage.source.starts_with(ANSWERED_BEFORE_SOURCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(decision: &str, final_text: Option<&str>) -> LearningRecord {
        serde_json::from_value(serde_json::json!({
            "approval_id": format!("1-7-{decision}"), "account_id": 1, "conversation_id": 7,
            "decision": decision, "operator": "maria",
            "customer_message": "How long does standard shipping take?",
            "draft": "unedited draft", "final_text": final_text,
            "confidence": 60, "recommended_action": "review", "priority": "normal",
            "drafter": "extractive", "placeholder": false, "sources": [],
            "was_sent": false, "decided_at_ms": 0, "customer_replied": false
        }))
        .expect("a learning record")
    }

    #[test]
    fn only_operators_final_texts_are_learned() {
        let store =
            AnsweredBefore::from_records(&[record("reject", None), record("escalate", None)]);
        assert!(store.is_empty());
        let store = AnsweredBefore::from_records(&[record(
            "edit",
            Some("Standard shipping takes 2 to 4 business days."),
        )]);
        let found = store.search("how long does standard shipping take", 3);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].text,
            "Standard shipping takes 2 to 4 business days."
        );
        assert!(found[0].title.starts_with(ANSWERED_BEFORE_TITLE));
        assert!(is_answered_before(&found[0]));
        assert!(!found[0].text.contains("unedited"));
    }

    #[test]
    fn unrelated_questions_find_nothing_and_newer_answers_replace_older() {
        let mut store = AnsweredBefore::new();
        store.add("a", "How long does standard shipping take?", "old");
        store.add("b", "How long does standard shipping take?", "new");
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.search("standard shipping take long", 1)[0].text,
            "new"
        );
        assert!(store.search("What does AN-6 mean?", 3).is_empty());
    }

    #[test]
    fn a_bounded_store_keeps_the_newest_answers() {
        let mut store = AnsweredBefore::new();
        for (i, question) in [
            "Shipping to Canada?",
            "Do you sell AN-8 hose?",
            "Return window?",
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = record("approve", Some(&format!("answer {i}")));
            r.customer_message = question.into();
            r.approval_id = format!("a{i}");
            store.learn_bounded(&r, 2);
        }
        assert_eq!(store.len(), 2);
        assert!(
            store.search("shipping canada", 1).is_empty(),
            "oldest dropped"
        );
        assert_eq!(store.search("return window", 1)[0].text, "answer 2");
    }
}
