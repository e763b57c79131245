//! Word-boundary phrase matching for the drafter's word lists (safety words, referral
//! phrases, the sentiment lexicon).
//!
//! Text is cut into lowercase words (letters, digits and inner apostrophes, with `’` read as
//! `'`); a phrase matches when its words occur consecutively. So `leak` matches "Leak!" and
//! "a leak." but not "leakproof", and `gas smell` matches "gas   smell".
//!
//! Safety words are also matched **with one typo** ([`matches_with_typos`]): a word of at least
//! [`TYPO_MIN_CHARS`] letters matches a text word one letter longer or shorter, or with two
//! neighbouring letters swapped ("leakin", "leakign" for `leaking`). Substitutions are not
//! typos here: they turn real words into other real words ("spoke" for `smoke`, "frames" for
//! `flames`), and a false alarm costs an operator's attention on every such message.

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

/// Shortest phrase word that is matched with a typo: shorter words have too many real
/// neighbours ("fire"/"fired", "leak"/"lean").
pub(crate) const TYPO_MIN_CHARS: usize = 6;

/// Correctly spelled English words one typo away from a default safety word (found by
/// running [`one_typo_from`] over Debian's `wamerican` word list against
/// `DEFAULT_SAFETY_WORDS`): they are words, not typos. Plurals of safety words ("accidents",
/// "explosions") are left out on purpose: they should match.
const REAL_WORDS: &[&str] = &[
    "bakes", "baking", "barking", "benin", "bless", "bremen", "breaking", "flambes", "flamers",
    "inured", "sells", "smocking",
];

/// True when `word` is `target` with one letter inserted or deleted, or two neighbouring
/// letters swapped, after the first letter (typos rarely hit the first letter, and dropping
/// it makes other words: "rakes" for `brakes`), `target` is long enough for that to be a
/// typo, and `word` is not a correctly spelled word of its own ([`REAL_WORDS`]).
fn one_typo_from(word: &str, target: &str) -> bool {
    let (w, t): (Vec<char>, Vec<char>) = (word.chars().collect(), target.chars().collect());
    if t.len() < TYPO_MIN_CHARS || w == t || w.first() != t.first() || REAL_WORDS.contains(&word) {
        return false;
    }
    match w.len() as isize - t.len() as isize {
        -1 | 1 => strsim::generic_levenshtein(&w, &t) == 1,
        0 => {
            let differ: Vec<usize> = (0..w.len()).filter(|&i| w[i] != t[i]).collect();
            matches!(differ.as_slice(), [a, b] if *b == a + 1 && w[*a] == t[*b] && w[*b] == t[*a])
        }
        _ => false,
    }
}

impl Phrase {
    /// True when the phrase occurs in `haystack` with at most one typo per word.
    fn occurs_with_typos_in(&self, haystack: &[String]) -> bool {
        haystack.windows(self.words.len()).any(|window| {
            window
                .iter()
                .zip(&self.words)
                .all(|(w, p)| w == p || one_typo_from(w, p))
        })
    }
}

/// The phrases of `list` that occur in `haystack`, allowing one typo per long word (module
/// docs).
pub(crate) fn matches_with_typos<'a>(list: &'a [Phrase], haystack: &[String]) -> Vec<&'a str> {
    list.iter()
        .filter(|p| p.occurs_with_typos_in(haystack))
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

    #[test]
    fn long_safety_words_match_with_one_typo_but_not_with_a_substitution() {
        let list = phrases(["leaking", "smoke", "flames", "burning smell"]);
        let found = |text: &str| matches_with_typos(&list, &words(text));
        assert_eq!(found("fiting keeps leakin gas"), vec!["leaking"]);
        assert_eq!(found("it is leakign"), vec!["leaking"]);
        assert_eq!(
            found("a burnin smel"),
            Vec::<&str>::new(),
            "smell is too short"
        );
        assert_eq!(found("a burnin smell"), vec!["burning smell"]);
        assert!(
            found("I spoke to your agent").is_empty(),
            "short word, no typo"
        );
        assert!(
            found("new frames arrived").is_empty(),
            "a substitution is not a typo"
        );
        assert!(found("leaky").is_empty(), "two edits");
        assert!(found("eaking").is_empty(), "the first letter is kept");
        let brakes = phrases(["braking"]);
        assert!(matches_with_typos(&brakes, &words("my hose keeps breaking")).is_empty());
        assert_eq!(
            matches_with_typos(&brakes, &words("brakng hard")),
            vec!["braking"]
        );
        assert!(found("leakproof hose").is_empty());
    }
}
