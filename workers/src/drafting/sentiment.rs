//! A sentiment hint from a small lexicon: enough to flag an angry customer for the operator,
//! not a classifier.
//!
//! Rule: count positive and negative words (a negation within the two words before a
//! positive word makes it negative: "not happy"), and angry words. Angry words, or negative
//! words with shouting (`!!`, or two or more ALL-CAPS words), give [`Sentiment::Angry`];
//! otherwise more negative than positive gives `Negative`, the opposite `Positive`, and a
//! tie `Neutral`.

use serde::{Deserialize, Serialize};

use super::lexicon::{phrases, Phrase};

/// How the customer sounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sentiment {
    /// Thankful, pleased.
    Positive,
    /// Matter-of-fact.
    Neutral,
    /// Unhappy, reporting a problem.
    Negative,
    /// Upset or hostile: handle with care.
    Angry,
}

impl Sentiment {
    /// `positive`, `neutral`, `negative` or `angry` (the wire value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Positive => "positive",
            Self::Neutral => "neutral",
            Self::Negative => "negative",
            Self::Angry => "angry",
        }
    }
}

const ANGRY: &[&str] = &[
    "angry",
    "furious",
    "outraged",
    "livid",
    "ridiculous",
    "unacceptable",
    "disgrace",
    "disgraceful",
    "pathetic",
    "scam",
    "scammers",
    "fraud",
    "rip off",
    "ripoff",
    "worst",
    "useless",
    "incompetent",
    "joke",
    "wtf",
    "sue",
    "lawyer",
    "never again",
    "fed up",
];

const NEGATIVE: &[&str] = &[
    "bad",
    "broken",
    "wrong",
    "damaged",
    "defective",
    "faulty",
    "late",
    "delayed",
    "missing",
    "problem",
    "issue",
    "disappointed",
    "disappointing",
    "annoyed",
    "frustrated",
    "poor",
    "terrible",
    "awful",
    "horrible",
    "still",
    "again",
    "cracked",
    "failed",
    "fails",
    "refund",
    "complaint",
    "unhappy",
    "waiting",
];

const POSITIVE: &[&str] = &[
    "thanks",
    "thank",
    "great",
    "good",
    "love",
    "awesome",
    "perfect",
    "excellent",
    "happy",
    "pleased",
    "amazing",
    "helpful",
    "appreciate",
    "fantastic",
    "nice",
    "glad",
];

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "isn't", "wasn't", "don't", "didn't", "aren't", "hardly",
];

/// Estimates the sentiment of `text`.
pub fn estimate_sentiment(text: &str) -> Sentiment {
    let words = super::lexicon::words(text);
    let angry = count(&phrases(ANGRY.iter().copied()), &words);
    let mut negative = count(&phrases(NEGATIVE.iter().copied()), &words);
    let mut positive = 0;
    for (i, word) in words.iter().enumerate() {
        if POSITIVE.contains(&word.as_str()) {
            let negated = words[i.saturating_sub(2)..i]
                .iter()
                .any(|w| NEGATIONS.contains(&w.as_str()));
            if negated {
                negative += 1;
            } else {
                positive += 1;
            }
        }
    }
    let shouting = text.contains("!!")
        || text
            .split_whitespace()
            .filter(|w| {
                let letters: Vec<char> = w.chars().filter(|c| c.is_alphabetic()).collect();
                letters.len() >= 3 && letters.iter().all(|c| c.is_uppercase())
            })
            .count()
            >= 2;
    if angry > 0 || (negative > 0 && shouting) {
        Sentiment::Angry
    } else if negative > positive {
        Sentiment::Negative
    } else if positive > negative {
        Sentiment::Positive
    } else {
        Sentiment::Neutral
    }
}

fn count(list: &[Phrase], words: &[String]) -> usize {
    list.iter().filter(|p| p.occurs_in(words)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_rules_give_the_expected_hints() {
        assert_eq!(
            estimate_sentiment("What does AN-6 mean?"),
            Sentiment::Neutral
        );
        assert_eq!(
            estimate_sentiment("Thanks, the hose kit is perfect"),
            Sentiment::Positive
        );
        assert_eq!(
            estimate_sentiment("I am not happy with the fitting"),
            Sentiment::Negative
        );
        assert_eq!(
            estimate_sentiment("The order is late and the box was damaged"),
            Sentiment::Negative
        );
        assert_eq!(estimate_sentiment("This is unacceptable"), Sentiment::Angry);
        assert_eq!(
            estimate_sentiment("WHERE IS MY ORDER, it is late!!"),
            Sentiment::Angry
        );
    }
}
