//! Word-boundary phrase matching for the drafter's word lists (safety words, referral
//! phrases, the sentiment lexicon).
//!
//! Text is cut into lowercase words (letters, digits and inner apostrophes, with `’` read as
//! `'`); a phrase matches when its words occur consecutively. So `leak` matches "Leak!" and
//! "a leak." but not "leakproof", and `gas smell` matches "gas   smell".

/// The lowercase words of `text`.
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text
        .chars()
        .map(|c| if c == '’' { '\'' } else { c })
        .collect();
    for (i, c) in chars.iter().enumerate() {
        let inner_apostrophe = *c == '\''
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// A phrase prepared for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Phrase {
    original: String,
    words: Vec<String>,
}

impl Phrase {
    /// `None` when the phrase has no words.
    pub(crate) fn new(phrase: &str) -> Option<Self> {
        let words = words(phrase);
        (!words.is_empty()).then(|| Self {
            original: phrase.trim().to_owned(),
            words,
        })
    }

    /// The phrase as configured.
    pub(crate) fn as_str(&self) -> &str {
        &self.original
    }

    /// True when the phrase occurs in `haystack` (words of a text).
    pub(crate) fn occurs_in(&self, haystack: &[String]) -> bool {
        haystack
            .windows(self.words.len())
            .any(|w| w == self.words.as_slice())
    }
}

/// The phrases of `list` that occur in `haystack`.
pub(crate) fn matches<'a>(list: &'a [Phrase], haystack: &[String]) -> Vec<&'a str> {
    list.iter()
        .filter(|p| p.occurs_in(haystack))
        .map(Phrase::as_str)
        .collect()
}

/// Builds phrases from strings, skipping empty ones.
pub(crate) fn phrases<'a>(list: impl IntoIterator<Item = &'a str>) -> Vec<Phrase> {
    list.into_iter().filter_map(Phrase::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_match_on_word_boundaries_case_insensitively() {
        let list = phrases(["leak", "gas smell", "don't give"]);
        assert_eq!(matches(&list, &words("A LEAK!")), vec!["leak"]);
        assert!(matches(&list, &words("leakproof hose")).is_empty());
        assert_eq!(
            matches(&list, &words("strong gas   smell")),
            vec!["gas smell"]
        );
        assert_eq!(
            matches(&list, &words("We don’t give advice")),
            vec!["don't give"]
        );
    }
}
