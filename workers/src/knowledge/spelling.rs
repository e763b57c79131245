//! Spelling correction for query terms the knowledge base does not contain ("shiping",
//! "retrun", "standrad"): the index's own vocabulary, with the terms one edit away found
//! through a table of single-letter deletions (the symmetric-delete idea of SymSpell), so a
//! lookup costs a few hash probes whatever the vocabulary's size.
//!
//! Only terms of at least [`MIN_CHARS`] characters are corrected (short terms have too many
//! neighbours), and a term is replaced by the neighbour most passages contain.

use std::collections::HashMap;

/// Shortest term that is corrected.
pub(crate) const MIN_CHARS: usize = 4;

/// The vocabulary of an index, searchable by one edit.
#[derive(Debug, Default)]
pub(crate) struct Spelling {
    /// Term → how many passages contain it.
    frequency: HashMap<String, u32>,
    /// A term with one character deleted → the terms it came from.
    deletions: HashMap<String, Vec<String>>,
}

/// Every string made by deleting one character of `term`.
fn deletions_of(term: &str) -> impl Iterator<Item = String> + '_ {
    term.char_indices().map(move |(i, c)| {
        let mut s = String::with_capacity(term.len());
        s.push_str(&term[..i]);
        s.push_str(&term[i + c.len_utf8()..]);
        s
    })
}

impl Spelling {
    /// The vocabulary of `passages`, each given as its (deduplicated) terms.
    pub(crate) fn from_passages<'a>(passages: impl IntoIterator<Item = &'a [String]>) -> Self {
        let mut frequency: HashMap<String, u32> = HashMap::new();
        for terms in passages {
            for term in terms {
                *frequency.entry(term.clone()).or_default() += 1;
            }
        }
        let mut deletions: HashMap<String, Vec<String>> = HashMap::new();
        for term in frequency.keys() {
            if term.chars().count() < MIN_CHARS {
                continue;
            }
            for deleted in deletions_of(term) {
                deletions.entry(deleted).or_default().push(term.clone());
            }
        }
        Self {
            frequency,
            deletions,
        }
    }

    /// True when some passage contains `term`.
    pub(crate) fn knows(&self, term: &str) -> bool {
        self.frequency.contains_key(term)
    }

    /// The known term one edit (insertion, deletion, substitution or transposition of
    /// neighbours) from `term` that most passages contain; `None` for a known or short term,
    /// or when nothing is that close.
    pub(crate) fn correct(&self, term: &str) -> Option<&str> {
        if term.chars().count() < MIN_CHARS || self.knows(term) {
            return None;
        }
        let mut candidates: Vec<&str> = Vec::new();
        // `term` has one extra character: one of its deletions is a known term.
        for deleted in deletions_of(term) {
            if let Some((known, _)) = self.frequency.get_key_value(&deleted) {
                candidates.push(known);
            }
            // Substitution or transposition: both lose one character to the same string.
            if let Some(from) = self.deletions.get(&deleted) {
                candidates.extend(from.iter().map(String::as_str));
            }
        }
        // `term` misses one character: it is a deletion of a known term.
        if let Some(from) = self.deletions.get(term) {
            candidates.extend(from.iter().map(String::as_str));
        }
        candidates
            .into_iter()
            .filter(|c| strsim::osa_distance(c, term) == 1)
            .max_by_key(|c| {
                (
                    self.frequency.get(*c).copied().unwrap_or(0),
                    std::cmp::Reverse(*c),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spelling(passages: &[&[&str]]) -> Spelling {
        let owned: Vec<Vec<String>> = passages
            .iter()
            .map(|p| p.iter().map(|t| (*t).to_owned()).collect())
            .collect();
        Spelling::from_passages(owned.iter().map(Vec::as_slice))
    }

    #[test]
    fn one_edit_typos_find_the_known_term() {
        let s = spelling(&[&["return", "standard", "ship"], &["return", "shipping"]]);
        assert_eq!(s.correct("retrun"), Some("return"), "transposition");
        assert_eq!(s.correct("standrad"), Some("standard"), "transposition");
        assert_eq!(s.correct("shiping"), Some("shipping"), "deletion");
        assert_eq!(s.correct("returnn"), Some("return"), "insertion");
        assert_eq!(s.correct("retorn"), Some("return"), "substitution");
    }

    #[test]
    fn known_short_and_distant_terms_are_left_alone() {
        let s = spelling(&[&["return", "ship"]]);
        assert_eq!(s.correct("return"), None);
        assert_eq!(
            s.correct("shpi"),
            Some("ship"),
            "four characters are enough"
        );
        assert_eq!(s.correct("abc"), None);
        assert_eq!(s.correct("rtrnx"), None);
    }

    #[test]
    fn the_neighbour_most_passages_contain_wins() {
        let s = spelling(&[&["hoses"], &["hoses"], &["horse"]]);
        assert_eq!(s.correct("hosse"), Some("hoses"));
    }
}
