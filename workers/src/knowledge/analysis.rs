//! Text analysis shared by the index and the drafter: one tokenizer, so a query, a passage and
//! a drafted sentence are compared on the same terms.
//!
//! Words are split on anything that is not a letter or digit, except that part codes keep
//! their inner `-`, `/` or `.` (`AN-6`, `3/8`, `1.5`): such a code is emitted whole *and* as
//! its parts, so `AN-6` matches the exact code strongly and `6` or `an` loosely. Terms are
//! lowercased and stemmed (English), and query-side analysis also drops stop words.

use std::collections::HashSet;

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, StopWordFilter, TextAnalyzer, Token,
    TokenStream, Tokenizer,
};

/// Name under which the index registers [`index_analyzer`].
pub(crate) const TOKENIZER_NAME: &str = "copydesk";

/// Tokens longer than this are dropped (base64 blobs, URLs glued together).
const MAX_TOKEN_CHARS: usize = 40;

/// Bytes of one customer message (or context message) that are analysed at most. Chatwoot
/// accepts messages of 150 000 characters; a real question says what it is about long before
/// 8 KB, and the cap bounds the work one message can cost the index and the drafter.
pub const MAX_ANALYSED_BYTES: usize = 8 * 1024;

/// English words too common to say anything about what a question is about, and the words
/// customers frame questions with ("tell", "wondering", "please"). `an` is here on purpose:
/// the code `AN-6` survives as the compound token `an-6`.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "anybody",
    "anyone",
    "anything",
    "are",
    "as",
    "ask",
    "asked",
    "asking",
    "at",
    "be",
    "been",
    "bit",
    "but",
    "by",
    "can",
    "cheers",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "explain",
    "folks",
    "for",
    "from",
    "get",
    "got",
    "guys",
    "had",
    "has",
    "have",
    "hello",
    "help",
    "hey",
    "hi",
    "how",
    "i",
    "if",
    "in",
    "info",
    "information",
    "into",
    "is",
    "it",
    "its",
    "just",
    "know",
    "let",
    "like",
    "me",
    "much",
    "my",
    "need",
    "of",
    "ok",
    "okay",
    "on",
    "or",
    "our",
    "please",
    "question",
    "questions",
    "quick",
    "quickly",
    "really",
    "regards",
    "should",
    "so",
    "some",
    "someone",
    "something",
    "sure",
    "tell",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "too",
    "us",
    "use",
    "very",
    "want",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "wonder",
    "wondered",
    "wondering",
    "would",
    "yeah",
    "yes",
    "you",
    "your",
];

/// Splits text into words and part codes (see the module doc).
#[derive(Debug, Clone, Default)]
pub(crate) struct CodeAwareTokenizer;

/// The tokens of one text, computed up front (texts are short).
pub(crate) struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for CodeAwareTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        VecTokenStream {
            tokens: split_tokens(text),
            next: 0,
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

fn is_joiner(c: char) -> bool {
    matches!(c, '-' | '/' | '.')
}

/// Words and codes with their byte offsets; a code's parts share its position.
fn split_tokens(text: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut tokens = Vec::new();
    let mut position = 0;
    let mut i = 0;
    while i < chars.len() {
        if !is_word_char(chars[i].1) {
            i += 1;
            continue;
        }
        // A run of word characters, possibly joined by single joiners between word characters.
        let start = i;
        let mut parts = Vec::new();
        let mut part_start = i;
        loop {
            while i < chars.len() && is_word_char(chars[i].1) {
                i += 1;
            }
            parts.push((part_start, i));
            let joined =
                i + 1 < chars.len() && is_joiner(chars[i].1) && is_word_char(chars[i + 1].1);
            if !joined {
                break;
            }
            i += 1;
            part_start = i;
        }
        let byte = |idx: usize| chars.get(idx).map_or(text.len(), |(b, _)| *b);
        let mut push = |from: usize, to: usize| {
            tokens.push(Token {
                offset_from: byte(from),
                offset_to: byte(to),
                position,
                text: text[byte(from)..byte(to)].to_owned(),
                position_length: 1,
            });
        };
        push(start, i);
        if parts.len() > 1 {
            for (from, to) in parts {
                push(from, to);
            }
        }
        position += 1;
    }
    tokens
}

/// The analyzer the index uses for passages: code-aware words, lowercased, stemmed.
pub(crate) fn index_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(CodeAwareTokenizer)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_CHARS))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analyzer for questions: as [`index_analyzer`], without stop words.
fn query_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(CodeAwareTokenizer)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_CHARS))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_owned()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The start of `text` that is analysed: at most [`MAX_ANALYSED_BYTES`], cut at a character
/// boundary (and before a word that the cut would split).
pub fn analysed_part(text: &str) -> &str {
    if text.len() <= MAX_ANALYSED_BYTES {
        return text;
    }
    let mut end = MAX_ANALYSED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    match head.rfind(|c: char| !is_word_char(c)) {
        Some(space) if space > 0 => &head[..space],
        _ => head,
    }
}

/// The distinct content terms of `text` (stop words dropped), in order of first appearance.
/// Linear in the text's length.
///
/// This is what "the question's terms" means everywhere: retrieval relevance and the
/// drafter's coverage both count these. Callers analysing a customer's message pass
/// [`analysed_part`] of it.
pub fn content_terms(text: &str) -> Vec<String> {
    let mut analyzer = query_analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut seen: HashSet<String> = HashSet::new();
    let mut terms: Vec<String> = Vec::new();
    while stream.advance() {
        let term = &stream.token().text;
        if seen.insert(term.clone()) {
            terms.push(term.clone());
        }
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_codes_are_kept_whole_and_split() {
        let terms = content_terms("What does AN-6 mean in inches?");
        assert_eq!(terms, vec!["an-6", "6", "mean", "inch"]);
    }

    #[test]
    fn fractions_quotes_and_symbols_do_not_break_tokenizing() {
        let terms = content_terms("3/8\" hose — \"PTFE\" (AN-6)?! 100% e85");
        assert!(terms.contains(&"3/8".to_owned()), "{terms:?}");
        assert!(terms.contains(&"ptfe".to_owned()), "{terms:?}");
        assert!(terms.contains(&"e85".to_owned()), "{terms:?}");
        assert!(content_terms("\"\"\" ??? ---").is_empty());
    }

    #[test]
    fn long_texts_are_cut_at_a_boundary_before_analysis() {
        let short = "What does AN-6 mean?";
        assert_eq!(analysed_part(short), short);
        // Multi-byte characters straddling the cap: never a panic, never a split word.
        let long = "ё".repeat(MAX_ANALYSED_BYTES) + " tail";
        let part = analysed_part(&long);
        assert!(part.len() <= MAX_ANALYSED_BYTES);
        assert!(long.starts_with(part));
        let words = "word ".repeat(10 * MAX_ANALYSED_BYTES);
        let part = analysed_part(&words);
        assert!(
            part.len() <= MAX_ANALYSED_BYTES && part.ends_with("word"),
            "{}",
            &part[part.len() - 8..]
        );
    }

    #[test]
    fn distinct_terms_of_a_huge_text_are_found_in_linear_time() {
        // 20 000 distinct words: the old nested scan did 2·10⁸ comparisons here.
        let text: String = (0..20_000).map(|n| format!("w{n}x ")).collect();
        let terms = content_terms(&text);
        assert_eq!(terms.len(), 20_000);
        assert_eq!(terms[0], "w0x");
    }

    #[test]
    fn stemming_matches_word_forms() {
        assert_eq!(
            content_terms("leaking fittings"),
            content_terms("leak fitting")
        );
    }
}
