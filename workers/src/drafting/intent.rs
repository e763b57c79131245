//! What a customer message asks for: a question, a request, or nothing that cannot wait.
//!
//! Small word lists, not a classifier: they decide only whether a draft may be recommended
//! for sending as is ([`asks_something`]) and whether the message can wait ([`can_wait`],
//! priority `low`).

use super::lexicon::words;

const QUESTION_WORDS: &[&str] = &[
    "what", "how", "when", "where", "which", "who", "why", "do", "does", "can", "could", "is",
    "are", "will", "would", "should", "may",
];

/// True for a question: it has a `?` or starts with a question word.
pub(crate) fn is_question(message: &str) -> bool {
    message.contains('?')
        || words(message)
            .first()
            .is_some_and(|w| QUESTION_WORDS.contains(&w.as_str()))
}

/// Phrases saying the message can wait.
const NO_RUSH: &[&str] = &[
    "no rush",
    "no hurry",
    "not urgent",
    "whenever you can",
    "whenever you get a chance",
    "when you get a chance",
    "when you have time",
    "no need to reply",
    "no need to answer",
    "just fyi",
    "just letting you know",
];

/// Words of a message that only thanks or acknowledges.
const ACKNOWLEDGEMENTS: &[&str] = &[
    "thanks",
    "thank",
    "thx",
    "ty",
    "cheers",
    "great",
    "perfect",
    "awesome",
    "ok",
    "okay",
    "got",
    "it",
    "received",
    "works",
    "worked",
    "sorted",
    "solved",
    "fixed",
    "that",
    "you",
    "so",
    "much",
    "all",
    "good",
    "now",
    "again",
    "the",
    "help",
    "for",
    "a",
    "lot",
    "fine",
    "appreciated",
    "appreciate",
    "brilliant",
    "lovely",
    "super",
    "nice",
    "yes",
    "done",
    "parcel",
    "package",
    "arrived",
    "came",
    "today",
    "my",
    "everything",
    "is",
    "was",
    "here",
];

/// Words of a request or an indirect question.
const REQUEST_WORDS: &[&str] = &[
    "please",
    "pls",
    "plz",
    "need",
    "want",
    "wanted",
    "send",
    "cancel",
    "change",
    "return",
    "refund",
    "order",
    "quote",
    "recommend",
    "advise",
    "help",
    "know",
    "wondering",
    "looking",
    "interested",
    "like",
    "tell",
    "check",
    "explain",
    "design",
    "spec",
    "make",
    "build",
];

/// True for a message that can wait (see the module doc).
pub(crate) fn can_wait(message: &str) -> bool {
    let lower = message.to_lowercase();
    if NO_RUSH.iter().any(|p| lower.contains(p)) {
        return true;
    }
    let all = words(message);
    if all.is_empty() || is_question(message) {
        return false;
    }
    all.iter().all(|w| ACKNOWLEDGEMENTS.contains(&w.as_str()))
        && all.iter().any(|w| {
            matches!(
                w.as_str(),
                "thanks"
                    | "thank"
                    | "thx"
                    | "ty"
                    | "cheers"
                    | "worked"
                    | "works"
                    | "received"
                    | "sorted"
                    | "solved"
                    | "fixed"
                    | "appreciated"
                    | "appreciate"
            )
        })
}

/// True when `message` asks or requests something: a question or a request word.
pub(crate) fn asks_something(message: &str) -> bool {
    is_question(message)
        || words(message)
            .iter()
            .any(|w| REQUEST_WORDS.contains(&w.as_str()))
}
