//! The embedded knowledge index: tantivy BM25 over a folder of Markdown and text files, in RAM.
//!
//! # Relevance
//! BM25 scores are unbounded and depend on the corpus, so each hit's score is divided by the
//! score an *ideal* passage would get: one that contains every query term once and has the
//! average length. Under BM25 such a passage scores exactly `Σ boost(t) · idf(t)` (the term
//! frequency factor is 1 at tf = 1 and average length), using tantivy's own idf
//! `ln(1 + (N − df + 0.5) / (df + 0.5))`. The ratio goes through a saturating
//! `tanh(1.3 · ratio)`, because passages that repeat a term or are short can beat the ideal:
//!
//! - a passage that contains all the question's terms scores ~0.7–1.0;
//! - one that matches only common words, or only part of the question, scores low;
//! - terms the knowledge base has never seen (df = 0) carry the highest idf, so a question
//!   about something the knowledge base does not cover gets low relevance everywhere.
//!
//! Context messages take part with boost [`CONTEXT_BOOST`], in the score and in the ideal.
//! A message term no passage contains is first spelling-corrected against the index's own
//! vocabulary (one edit, `spelling.rs`) and then weighs [`CORRECTED_BOOST`]: "shiping" finds
//! the shipping passage, and a term with no close neighbour keeps its df = 0 idf.
//!
//! Queries are built from analysed terms (never parsed as query syntax), so quotes, `AN-6`,
//! `3/8"` or a stray `(` cannot make a lookup fail.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED,
};
use tantivy::{doc, Index, IndexReader, TantivyDocument, Term};

use super::analysis::{analysed_part, content_terms, index_analyzer, TOKENIZER_NAME};
use super::markdown::{split_markdown, split_plain_text, Section};
use super::spelling::Spelling;
use super::{KnowledgeError, KnowledgeQuery, Passage, Retriever};

/// How much a spelling-corrected term weighs relative to a term as the customer wrote it.
pub(crate) const CORRECTED_BOOST: f32 = 0.8;

/// How much a context term weighs relative to a term of the message itself.
pub(crate) const CONTEXT_BOOST: f32 = 0.3;

/// Slope of the saturating map from `score / ideal` to relevance.
const RELEVANCE_STEEPNESS: f32 = 1.3;

/// Lookups never return more than this many passages, whatever `top_k` asks.
const MAX_TOP_K: usize = 100;

/// Memory budget of the single indexing thread (tantivy's minimum is 15 MB).
const WRITER_MEMORY_BYTES: usize = 20_000_000;

/// Files larger than this are skipped (a knowledge folder holds prose, not data dumps).
const MAX_FILE_BYTES: u64 = 2_000_000;

/// One built index and the passages it points into.
struct Snapshot {
    reader: IndexReader,
    content: Field,
    ordinal: Field,
    sections: Vec<Section>,
    spelling: Spelling,
}

/// The in-RAM index over a knowledge folder; [`EmbeddedIndex::reload`] swaps in a rebuilt one.
pub struct EmbeddedIndex {
    dir: PathBuf,
    current: RwLock<Arc<Snapshot>>,
}

impl std::fmt::Debug for EmbeddedIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedIndex")
            .field("dir", &self.dir)
            .field("passages", &self.passage_count())
            .finish()
    }
}

impl EmbeddedIndex {
    /// Reads every `.md`, `.markdown` and `.txt` file under `dir` (recursively) and indexes
    /// its passages.
    pub fn build(dir: impl Into<PathBuf>) -> Result<Self, KnowledgeError> {
        let dir = dir.into();
        let snapshot = build_snapshot(&dir)?;
        Ok(Self {
            dir,
            current: RwLock::new(Arc::new(snapshot)),
        })
    }

    /// Rebuilds the index from the folder and swaps it in atomically: lookups running during
    /// the rebuild use the old index, and a failed rebuild keeps it.
    pub fn reload(&self) -> Result<(), KnowledgeError> {
        let fresh = Arc::new(build_snapshot(&self.dir)?);
        match self.current.write() {
            Ok(mut guard) => *guard = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// The folder this index reads.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many passages are indexed.
    pub fn passage_count(&self) -> usize {
        self.snapshot().sections.len()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The best passages for `query`, synchronously (a RAM index answers in microseconds).
    pub fn search(&self, query: &KnowledgeQuery) -> Result<Vec<Passage>, KnowledgeError> {
        let snapshot = self.snapshot();
        snapshot.search(query)
    }
}

impl Retriever for EmbeddedIndex {
    /// Searches on the blocking pool: analysing the question and scoring are CPU work that
    /// must not hold an async worker thread (other conversations' jobs run there).
    fn retrieve<'a>(
        &'a self,
        query: &'a KnowledgeQuery,
    ) -> futures::future::BoxFuture<'a, Result<Vec<Passage>, KnowledgeError>> {
        let snapshot = self.snapshot();
        let query = query.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || snapshot.search(&query))
                .await
                .map_err(|e| {
                    KnowledgeError::Unavailable(format!("the index search stopped: {e}"))
                })?
        })
    }
}

impl Snapshot {
    fn search(&self, query: &KnowledgeQuery) -> Result<Vec<Passage>, KnowledgeError> {
        if query.top_k == 0 || self.sections.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let doc_count = searcher.num_docs();

        // Message terms at boost 1, then context terms not already in the message; each
        // message analysed up to the cap, the merge linear.
        // A term no passage contains is replaced by its one-edit neighbour, if it has one.
        let mut weighted: Vec<(String, f32)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for term in content_terms(analysed_part(&query.message)) {
            let (term, boost) = match self.spelling.correct(&term) {
                Some(known) => (known.to_owned(), CORRECTED_BOOST),
                None => (term, 1.0),
            };
            if seen.insert(term.clone()) {
                weighted.push((term, boost));
            }
        }
        for message in query.recent_context() {
            for term in content_terms(analysed_part(message)) {
                if seen.insert(term.clone()) {
                    weighted.push((term, CONTEXT_BOOST));
                }
            }
        }

        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(weighted.len());
        let mut ideal = 0.0_f32;
        for (text, boost) in &weighted {
            let term = Term::from_field_text(self.content, text);
            let doc_freq = searcher.doc_freq(&term)?;
            ideal += boost * bm25_idf(doc_freq, doc_count);
            let term_query: Box<dyn Query> =
                Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
            let clause: Box<dyn Query> = if (*boost - 1.0).abs() < f32::EPSILON {
                term_query
            } else {
                Box::new(BoostQuery::new(term_query, *boost))
            };
            clauses.push((Occur::Should, clause));
        }
        if clauses.is_empty() || ideal <= 0.0 {
            return Ok(Vec::new());
        }

        let hits = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(query.top_k.min(MAX_TOP_K)),
        )?;
        let mut passages = Vec::with_capacity(hits.len());
        for (score, address) in hits {
            let stored: TantivyDocument = searcher.doc(address)?;
            let Some(ordinal) = stored.get_first(self.ordinal).and_then(|v| v.as_u64()) else {
                continue;
            };
            let Some(section) = usize::try_from(ordinal)
                .ok()
                .and_then(|i| self.sections.get(i))
            else {
                continue;
            };
            passages.push(Passage {
                source: section.source.clone(),
                title: section.title.clone(),
                text: section.text.clone(),
                relevance: relevance(score, ideal),
            });
        }
        Ok(passages)
    }
}

/// Maps a BM25 score onto `0..=1` relative to the ideal score (see the module doc):
/// `tanh(RELEVANCE_STEEPNESS · score / ideal)`, so an ideal match gives ~0.86, a passage that
/// repeats the question's terms approaches 1, and half the ideal gives ~0.57.
fn relevance(score: f32, ideal: f32) -> f32 {
    if ideal <= 0.0 || !score.is_finite() {
        return 0.0;
    }
    (RELEVANCE_STEEPNESS * score / ideal).tanh().clamp(0.0, 1.0)
}

/// tantivy's BM25 idf (`tantivy::query::bm25`), repeated here only to compute the ideal score.
fn bm25_idf(doc_freq: u64, doc_count: u64) -> f32 {
    let doc_freq = doc_freq.min(doc_count) as f32;
    let x = (doc_count as f32 - doc_freq + 0.5) / (doc_freq + 0.5);
    (1.0 + x).ln()
}

fn build_snapshot(dir: &Path) -> Result<Snapshot, KnowledgeError> {
    let sections = read_sections(dir)?;

    let mut schema = Schema::builder();
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER_NAME)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let content = schema.add_text_field(
        "content",
        TextOptions::default().set_indexing_options(indexing),
    );
    let ordinal = schema.add_u64_field("ordinal", STORED);
    let index = Index::create_in_ram(schema.build());
    index
        .tokenizers()
        .register(TOKENIZER_NAME, index_analyzer());

    let mut writer = index.writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
    let mut vocabulary: Vec<Vec<String>> = Vec::with_capacity(sections.len());
    for (n, section) in sections.iter().enumerate() {
        // The heading counts twice (once in the breadcrumb): a passage whose heading names
        // the question's subject should outrank one that merely mentions it.
        let text = format!(
            "{}\n{}\n{}",
            section.breadcrumb, section.title, section.text
        );
        vocabulary.push(content_terms(&text));
        writer.add_document(doc!(
            content => text,
            ordinal => n as u64,
        ))?;
    }
    let spelling = Spelling::from_passages(vocabulary.iter().map(Vec::as_slice));
    writer.commit()?;
    let reader = index.reader()?;
    reader.reload()?;
    Ok(Snapshot {
        reader,
        content,
        ordinal,
        sections,
        spelling,
    })
}

/// Every passage of every knowledge file under `dir`, in path order (deterministic).
fn read_sections(dir: &Path) -> Result<Vec<Section>, KnowledgeError> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut sections = Vec::new();
    for path in files {
        let relative = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let content = std::fs::read_to_string(&path).map_err(|source| KnowledgeError::Read {
            path: path.clone(),
            source,
        })?;
        let is_markdown = matches!(extension(&path).as_deref(), Some("md" | "markdown"));
        if is_markdown {
            sections.extend(split_markdown(&relative, &content));
        } else {
            sections.extend(split_plain_text(&relative, &content));
        }
    }
    Ok(sections)
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), KnowledgeError> {
    let read_error = |source| KnowledgeError::Read {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        let file_type = entry.file_type().map_err(read_error)?;
        if hidden {
            continue;
        }
        if file_type.is_dir() {
            collect_files(&path, files)?;
        } else if file_type.is_file()
            && matches!(extension(&path).as_deref(), Some("md" | "markdown" | "txt"))
            && entry
                .metadata()
                .map(|m| m.len() <= MAX_FILE_BYTES)
                .unwrap_or(false)
        {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample knowledge base shipped in the repository.
    pub(crate) fn sample_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../knowledge")
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("copydesk-knowledge-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir is creatable");
        dir
    }

    #[test]
    fn an_size_question_finds_the_faq_with_high_relevance() {
        let index = EmbeddedIndex::build(sample_dir()).expect("sample knowledge indexes");
        let passages = index
            .search(&KnowledgeQuery::new("What does AN-6 mean in inches?"))
            .expect("search works");
        let best = passages.first().expect("a passage is found");
        assert_eq!(best.source, "faq.md#what-does-an-6-mean");
        assert!(best.relevance >= 0.7, "relevance {}", best.relevance);
        assert!(passages.iter().all(|p| (0.0..=1.0).contains(&p.relevance)));
        assert!(passages
            .windows(2)
            .all(|w| w[0].relevance >= w[1].relevance));
    }

    #[test]
    fn off_topic_questions_get_low_relevance() {
        let index = EmbeddedIndex::build(sample_dir()).expect("sample knowledge indexes");
        let passages = index
            .search(&KnowledgeQuery::new(
                "Can you recommend a good pizza restaurant downtown?",
            ))
            .expect("search works");
        assert!(passages.iter().all(|p| p.relevance < 0.3), "{passages:?}");
    }

    #[test]
    fn queries_with_special_characters_do_not_error() {
        let index = EmbeddedIndex::build(sample_dir()).expect("sample knowledge indexes");
        for text in [
            "AN-6",
            "3/8\" hose?",
            "\"PTFE\" AND (rubber OR",
            "field:value -minus +plus ~tilde ^2 [a TO b] {x} \\ *",
            "",
            "???",
            "ÄÖÜ 日本語 🚗",
        ] {
            let result = index.search(&KnowledgeQuery::new(text));
            assert!(result.is_ok(), "{text:?} failed: {result:?}");
        }
        let hits = index
            .search(&KnowledgeQuery::new("3/8\" hose?"))
            .expect("search works");
        assert!(!hits.is_empty());
    }

    #[test]
    fn context_helps_a_follow_up_question() {
        let index = EmbeddedIndex::build(sample_dir()).expect("sample knowledge indexes");
        let query = KnowledgeQuery::new("And how long does that take?").with_context(vec![
            "When do you ship my order with express shipping?".into(),
        ]);
        let best = index.search(&query).expect("search works");
        assert!(
            best[0].source.starts_with("ordering-and-shipping.md"),
            "{best:?}"
        );
    }

    #[test]
    fn reload_picks_up_a_new_file() {
        let dir = temp_dir("reload");
        std::fs::write(dir.join("a.md"), "# Hours\n\nWe open at eight.\n").expect("write");
        let index = EmbeddedIndex::build(&dir).expect("index builds");
        let query = KnowledgeQuery::new("Do you sell titanium widgets?");
        assert!(index.search(&query).expect("search").is_empty());

        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        std::fs::write(
            dir.join("sub/widgets.txt"),
            "We sell titanium widgets in three sizes.",
        )
        .expect("write");
        index.reload().expect("reload works");

        let hits = index.search(&query).expect("search");
        assert_eq!(hits[0].source, "sub/widgets.txt#part-1");
        assert_eq!(index.passage_count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_folder_is_a_read_error_naming_it() {
        let err = EmbeddedIndex::build("/nonexistent/copydesk-knowledge").expect_err("must fail");
        assert!(
            err.to_string().contains("/nonexistent/copydesk-knowledge"),
            "{err}"
        );
    }
}
