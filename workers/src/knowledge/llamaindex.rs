//! The answers LlamaIndex servers really send, turned into [`Passage`]s.
//!
//! Accepted bodies (recorded from the real packages in `tests/fixtures/llamaindex/`):
//!
//! - `{"nodes": [NodeWithScore…]}`: any FastAPI app returning a retriever's result. FastAPI
//!   encodes by alias, so a node's `metadata` arrives as `extra_info`; `model_dump()` keeps
//!   `metadata`. Both are read.
//! - `{"nodes_dict": […]}`: `llama-index-networks`' `ContributorRetrieverService`.
//! - `{"retrieval_nodes": […]}`: LlamaCloud's `POST /api/v1/pipelines/{id}/retrieve`.
//! - a bare JSON list of `NodeWithScore`.
//!
//! A node is a `TextNode` (`text`) or the newer `Node` (`text_resource.text`); nodes without
//! text (image nodes) are skipped.
//!
//! **Title**: `metadata.title`, else the Markdown heading the text opens with (what
//! `MarkdownNodeParser` produces; the heading line is then dropped from the text), else the
//! last part of `header_path`, else the humanised `file_name`.
//! **Source**: a relative `metadata.source` or a URL as given; otherwise the file name
//! (`file_name`, or the last part of `file_path`/an absolute `source`) plus `#anchor` of the
//! title; never an absolute path or a node uuid (`knowledge base` when nothing names a file).
//! **Relevance**: see [`ScoreKind`].

use serde::Deserialize;
use serde_json::{Map, Value};

use super::markdown::anchor;
use super::Passage;

/// What the retriever's `score` means, so it can be mapped to a relevance in `0..=1`
/// (`COPYDESK_KNOWLEDGE_SCORE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreKind {
    /// A similarity already in `0..=1` (dense/cosine retrieval, LlamaCloud): clamped.
    Cosine,
    /// An unbounded BM25 score: `score / best · best / (best + BM25_HALF)`: the ratio to the
    /// best hit, times a saturating absolute measure of the best hit, so a best score of 0
    /// ("nothing matched") is relevance 0 and a weak best hit stays weak.
    Bm25,
    /// Decided per answer: when every score lies in `0..=1` as cosine, else as BM25.
    #[default]
    Auto,
}

/// BM25 score at which the best hit counts as relevance 0.5 (LlamaIndex's BM25 over the
/// sample knowledge: a precise question scores ≈ 4, a question it does not cover ≈ 1.3).
pub const BM25_HALF: f64 = 1.0;

/// Relevance used when the retriever sends no score.
pub const UNKNOWN_SCORE: f32 = 0.5;

/// Source shown when a node names no file.
const UNNAMED_SOURCE: &str = "knowledge base";

impl std::str::FromStr for ScoreKind {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "cosine" => Ok(Self::Cosine),
            "bm25" => Ok(Self::Bm25),
            "auto" => Ok(Self::Auto),
            _ => Err("expected cosine, bm25 or auto".to_owned()),
        }
    }
}

impl ScoreKind {
    /// Relevances in `0..=1` for `scores` (`None`: the server sent none).
    pub fn normalise(self, scores: &[Option<f64>]) -> Vec<f32> {
        let finite = |s: &Option<f64>| s.filter(|s| s.is_finite());
        let kind = match self {
            Self::Auto
                if scores
                    .iter()
                    .filter_map(finite)
                    .all(|s| (0.0..=1.0).contains(&s)) =>
            {
                Self::Cosine
            }
            Self::Auto => Self::Bm25,
            other => other,
        };
        let best = scores.iter().filter_map(finite).fold(0.0_f64, f64::max);
        scores
            .iter()
            .map(|s| match (finite(s), kind) {
                (None, _) => UNKNOWN_SCORE,
                (Some(s), Self::Cosine) => s.clamp(0.0, 1.0) as f32,
                (Some(_), _) if best <= 0.0 => 0.0,
                (Some(s), _) => (s.max(0.0) / best * best / (best + BM25_HALF)) as f32,
            })
            .collect()
    }
}

/// Any of the accepted bodies.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Body {
    Nodes { nodes: Vec<Scored> },
    NodesDict { nodes_dict: Vec<Scored> },
    RetrievalNodes { retrieval_nodes: Vec<Scored> },
    List(Vec<Scored>),
}

#[derive(Debug, Deserialize)]
struct Scored {
    node: RawNode,
    #[serde(default)]
    score: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct RawNode {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    text_resource: Option<TextResource>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    extra_info: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct TextResource {
    #[serde(default)]
    text: Option<String>,
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub struct ShapeError(pub String);

/// Passages from a retriever's JSON body, in the server's order (not yet sorted or cut).
pub fn passages_from_body(bytes: &[u8], kind: ScoreKind) -> Result<Vec<Passage>, ShapeError> {
    let body: Body = serde_json::from_slice(bytes).map_err(|e| {
        ShapeError(format!(
            "expected {{\"nodes\"|\"nodes_dict\"|\"retrieval_nodes\": [{{\"node\": {{…}}, \
             \"score\": …}}]}}: {e}"
        ))
    })?;
    let scored = match body {
        Body::Nodes { nodes }
        | Body::NodesDict { nodes_dict: nodes }
        | Body::RetrievalNodes {
            retrieval_nodes: nodes,
        }
        | Body::List(nodes) => nodes,
    };
    let scored: Vec<(RawNode, Option<f64>, String)> = scored
        .into_iter()
        .filter_map(|s| {
            let text = s
                .node
                .text
                .clone()
                .or_else(|| s.node.text_resource.as_ref().and_then(|r| r.text.clone()))
                .filter(|t| !t.trim().is_empty())?;
            Some((s.node, s.score, text))
        })
        .collect();
    let scores: Vec<Option<f64>> = scored.iter().map(|(_, s, _)| *s).collect();
    let relevances = kind.normalise(&scores);
    Ok(scored
        .into_iter()
        .zip(relevances)
        .map(|((node, _, text), relevance)| to_passage(node, text, relevance))
        .collect())
}

fn to_passage(node: RawNode, text: String, relevance: f32) -> Passage {
    let mut metadata = node.extra_info.unwrap_or_default();
    metadata.extend(node.metadata.unwrap_or_default());
    let field = |key: &str| {
        metadata
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (heading, body) = split_heading(&text);
    let header_last = field("header_path").and_then(|p| {
        p.split('/')
            .map(str::trim)
            .rfind(|s| !s.is_empty())
            .map(str::to_owned)
    });
    let file_name = field("file_name")
        .or_else(|| field("file_path").map(|p| base_name(&p).to_owned()))
        .or_else(|| {
            field("source")
                .filter(|s| is_absolute_path(s))
                .map(|s| base_name(&s).to_owned())
        })
        .filter(|f| !f.is_empty());
    let title = field("title")
        .or_else(|| heading.clone())
        .or(header_last)
        .or_else(|| file_name.as_deref().map(humanise))
        .unwrap_or_else(|| UNNAMED_SOURCE.to_owned());
    let given_source = field("source").filter(|s| !is_absolute_path(s) && !looks_like_uuid(s));
    let source = match (given_source, file_name) {
        (Some(source), _) => source,
        (None, Some(file)) => match &heading {
            Some(h) => format!("{file}#{}", anchor(h)),
            None => file,
        },
        (None, None) => UNNAMED_SOURCE.to_owned(),
    };
    let text = if heading.is_some() { body } else { text };
    Passage {
        title,
        source,
        text,
        relevance,
    }
}

/// `("What does AN-6 mean?", rest)` for a text that opens with a Markdown heading line.
fn split_heading(text: &str) -> (Option<String>, String) {
    let trimmed = text.trim_start();
    let (first, rest) = trimmed.split_once('\n').unwrap_or((trimmed, ""));
    let heading = first.trim_start_matches('#');
    if first.starts_with('#') && heading.starts_with(' ') && !heading.trim().is_empty() {
        (Some(heading.trim().to_owned()), rest.trim().to_owned())
    } else {
        (None, text.to_owned())
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

fn is_absolute_path(s: &str) -> bool {
    s.starts_with('/')
        || s.starts_with('\\')
        || s.get(1..3) == Some(":\\")
        || s.starts_with("file:")
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().filter(|c| *c == '-').count() == 4
        && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

/// "fuel-system_guide.md" → "Fuel system guide".
fn humanise(file: &str) -> String {
    let stem = file
        .split('.')
        .next()
        .unwrap_or(file)
        .replace(['-', '_'], " ");
    let mut chars = stem.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => file.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/llamaindex")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn recorded(name: &str) -> Vec<Passage> {
        passages_from_body(&fixture(name), ScoreKind::Auto)
            .unwrap_or_else(|e| panic!("{name}: {}", e.0))
    }

    /// Every recorded answer to "What does AN-6 mean in inches?" reads the same way.
    #[test]
    fn every_recorded_shape_gives_the_faq_passage_first() {
        for name in [
            "fastapi_extra_info.json",
            "fastapi_metadata.json",
            "networks_nodes_dict.json",
            "llamacloud_retrieval_nodes.json",
            "node_text_resource.json",
        ] {
            let passages = recorded(name);
            assert_eq!(passages.len(), 4, "{name}");
            let best = &passages[0];
            assert_eq!(best.title, "What does AN-6 mean?", "{name}");
            assert_eq!(best.source, "faq.md#what-does-an-6-mean", "{name}");
            assert!(best.text.contains("AN-6 = 6/16 = 3/8 inch"), "{name}");
            assert!(!best.text.starts_with('#'), "{name}: heading dropped");
            assert!(best.relevance > 0.7, "{name}: {}", best.relevance);
            for p in &passages {
                assert!(!p.source.starts_with('/'), "{name}: {}", p.source);
                assert!(!looks_like_uuid(&p.title), "{name}: {}", p.title);
                assert!(p.source.contains(".md#"), "{name}: {}", p.source);
                assert!((0.0..=1.0).contains(&p.relevance), "{name}");
                assert!(p.relevance <= best.relevance, "{name}");
            }
        }
    }

    #[test]
    fn bm25_scores_keep_their_ratio_instead_of_all_clamping_to_one() {
        let passages = recorded("networks_nodes_dict.json");
        // Recorded BM25 scores 3.99 and 1.96: the old clamp made both 1.0.
        assert!(
            passages[0].relevance > passages[1].relevance + 0.3,
            "{passages:?}"
        );
    }

    #[test]
    fn a_query_matching_little_reads_as_low_relevance() {
        let matched = recorded("fastapi_extra_info.json")[0].relevance;
        let nothing = recorded("bm25_nothing_matched.json");
        assert!(nothing[0].relevance < 0.6, "{}", nothing[0].relevance);
        assert!(nothing[0].relevance < matched - 0.15);
        let zero = ScoreKind::Bm25.normalise(&[Some(0.0), Some(0.0)]);
        assert_eq!(zero, vec![0.0, 0.0]);
        assert_eq!(ScoreKind::Auto.normalise(&[Some(0.0)]), vec![0.0]);
    }

    #[test]
    fn score_kinds_map_as_documented() {
        assert_eq!(
            ScoreKind::Cosine.normalise(&[Some(0.8), Some(3.0), None]),
            vec![0.8, 1.0, 0.5]
        );
        assert_eq!(
            ScoreKind::Auto.normalise(&[Some(0.8), Some(0.4)]),
            vec![0.8, 0.4]
        );
        let bm25 = ScoreKind::Auto.normalise(&[Some(4.0), Some(2.0)]);
        assert!(
            (bm25[0] - 0.8).abs() < 1e-6 && (bm25[1] - 0.4).abs() < 1e-6,
            "{bm25:?}"
        );
        assert_eq!("BM25".parse::<ScoreKind>(), Ok(ScoreKind::Bm25));
        assert!("dot".parse::<ScoreKind>().is_err());
    }

    #[test]
    fn titles_and_sources_fall_back_without_leaking_paths_or_ids() {
        let body = serde_json::json!({"nodes": [
            {"node": {"id_": "2e625cd6-8c53-4889-a335-b535964db4c9", "text": "plain text",
                      "extra_info": {"file_path": "/srv/kb/hose-guide.md",
                                     "header_path": "/Hose guide/PTFE hose/"}}, "score": 0.9},
            {"node": {"id_": "2e625cd6-8c53-4889-a335-b535964db4c8", "text": "x",
                      "metadata": {"source": "2e625cd6-8c53-4889-a335-b535964db4c8"}}, "score": 0.5},
            {"node": {"text": "y", "metadata": {"title": "Returns", "source": "returns.md#policy"}}},
            {"node": {"text": "", "metadata": {}}, "score": 1.0},
            {"node": {"image_resource": {"path": "a.png"}}, "score": 1.0}
        ]});
        let passages =
            passages_from_body(body.to_string().as_bytes(), ScoreKind::Cosine).expect("valid");
        assert_eq!(passages.len(), 3, "text-less nodes skipped");
        assert_eq!(passages[0].title, "PTFE hose");
        assert_eq!(passages[0].source, "hose-guide.md");
        assert_eq!(passages[1].title, UNNAMED_SOURCE);
        assert_eq!(passages[1].source, UNNAMED_SOURCE);
        assert_eq!(passages[2].source, "returns.md#policy");
        assert_eq!(passages[2].relevance, UNKNOWN_SCORE);
    }

    #[test]
    fn other_bodies_are_refused_with_the_expected_shape() {
        for body in [
            "not json",
            r#"{"results": []}"#,
            r#"{"nodes": [{"text": "x"}]}"#,
        ] {
            let err = passages_from_body(body.as_bytes(), ScoreKind::Auto).expect_err(body);
            assert!(err.0.contains("retrieval_nodes"), "{}", err.0);
        }
    }
}
