//! Splitting knowledge documents into passages.
//!
//! A Markdown document is cut at every heading (outside fenced code): each section becomes a
//! passage titled by its heading, with `source` = `relative/path.md#anchor` (GitHub-style
//! anchor). A section longer than [`MAX_PASSAGE_CHARS`] is cut further at paragraph breaks.
//! Plain text files have no headings: they are cut at paragraph breaks and titled by the file
//! name. The index also sees the heading path (`Leak troubleshooting › Fuel leak …`) so that a
//! document's subject helps its sections be found.

use std::collections::{HashMap, HashSet};

/// Sections longer than this are split at paragraph breaks, so one passage stays readable in
/// a draft and BM25 length normalisation stays meaningful.
pub(crate) const MAX_PASSAGE_CHARS: usize = 1_500;

/// One passage cut from a document, before indexing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Section {
    /// Nearest heading (or the humanised file name).
    pub(crate) title: String,
    /// `path#anchor`.
    pub(crate) source: String,
    /// Parent headings then the title, joined with ` › ` (indexed, not shown).
    pub(crate) breadcrumb: String,
    /// The passage text (without its heading line).
    pub(crate) text: String,
}

/// A GitHub-style anchor: lowercase, punctuation dropped, spaces to hyphens.
pub(crate) fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

/// "fuel-system_guide.md" → "Fuel system guide".
fn humanise_file_name(relative_path: &str) -> String {
    let stem = relative_path
        .rsplit('/')
        .next()
        .unwrap_or(relative_path)
        .split('.')
        .next()
        .unwrap_or_default()
        .replace(['-', '_'], " ");
    let mut chars = stem.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => relative_path.to_owned(),
    }
}

/// Splits `body` into chunks at blank lines, each at most [`MAX_PASSAGE_CHARS`] unless a single
/// paragraph is longer.
fn chunk_paragraphs(body: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    for paragraph in body.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        if !current.is_empty() && current.len() + paragraph.len() + 2 > MAX_PASSAGE_CHARS {
            chunks.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str("\n\n");
        }
        current.push_str(paragraph);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// `## Title` → `(2, "Title")`.
fn heading(line: &str) -> Option<(usize, String)> {
    let trimmed = line.trim_end();
    let level = trimmed.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &trimmed[level..];
    if !rest.starts_with(' ') {
        return None;
    }
    let title = rest.trim().trim_end_matches('#').trim().to_owned();
    (!title.is_empty()).then_some((level, title))
}

/// Cuts a Markdown document into sections (see the module doc).
pub(crate) fn split_markdown(relative_path: &str, content: &str) -> Vec<Section> {
    let fallback_title = humanise_file_name(relative_path);
    let mut sections = Vec::new();
    // Anchors given out, and per base anchor the next `-n` suffix to try: a document with
    // thousands of identical headings stays linear (a scan of every earlier anchor per
    // candidate suffix was cubic).
    let mut used_anchors: HashSet<String> = HashSet::new();
    let mut next_suffix: HashMap<String, usize> = HashMap::new();
    // (level, title) of the enclosing headings.
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut body = String::new();
    let mut in_fence = false;

    let mut flush = |path: &[(usize, String)], body: &mut String, sections: &mut Vec<Section>| {
        let text = std::mem::take(body);
        if text.trim().is_empty() {
            return;
        }
        let (title, source) = match path.last() {
            Some((_, title)) => {
                let base = anchor(title);
                let mut unique = base.clone();
                let n = next_suffix.entry(base.clone()).or_insert(1);
                while used_anchors.contains(&unique) {
                    unique = format!("{base}-{n}");
                    *n += 1;
                }
                used_anchors.insert(unique.clone());
                (title.clone(), format!("{relative_path}#{unique}"))
            }
            None => (fallback_title.clone(), relative_path.to_owned()),
        };
        let breadcrumb = if path.is_empty() {
            title.clone()
        } else {
            path.iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join(" › ")
        };
        for chunk in chunk_paragraphs(&text) {
            sections.push(Section {
                title: title.clone(),
                source: source.clone(),
                breadcrumb: breadcrumb.clone(),
                text: chunk,
            });
        }
    };

    for line in content.lines() {
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            in_fence = !in_fence;
        }
        match (!in_fence).then(|| heading(line)).flatten() {
            Some((level, title)) => {
                flush(&path, &mut body, &mut sections);
                path.retain(|(l, _)| *l < level);
                path.push((level, title));
            }
            None => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    flush(&path, &mut body, &mut sections);
    sections
}

/// Cuts a plain text document at paragraph breaks, titled by the file name.
pub(crate) fn split_plain_text(relative_path: &str, content: &str) -> Vec<Section> {
    let title = humanise_file_name(relative_path);
    chunk_paragraphs(&content.replace("\r\n", "\n"))
        .into_iter()
        .enumerate()
        .map(|(n, text)| Section {
            title: title.clone(),
            source: format!("{relative_path}#part-{}", n + 1),
            breadcrumb: title.clone(),
            text,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_cut_at_headings_with_anchors_and_breadcrumbs() {
        let doc = "# Guide\n\nIntro text.\n\n## What does AN-6 mean?\n\nSixteenths.\n\n```\n# not a heading\n```\n## Other\n\nMore.\n";
        let sections = split_markdown("faq.md", doc);
        assert_eq!(sections.len(), 3);
        assert_eq!(sections[0].title, "Guide");
        assert_eq!(sections[0].source, "faq.md#guide");
        assert_eq!(sections[1].title, "What does AN-6 mean?");
        assert_eq!(sections[1].source, "faq.md#what-does-an-6-mean");
        assert_eq!(sections[1].breadcrumb, "Guide › What does AN-6 mean?");
        assert!(sections[1].text.contains("# not a heading"));
        assert_eq!(sections[2].breadcrumb, "Guide › Other");
    }

    #[test]
    fn duplicate_headings_get_distinct_anchors() {
        let sections = split_markdown("a.md", "## Notes\n\nOne.\n\n## Notes\n\nTwo.\n");
        assert_eq!(sections[0].source, "a.md#notes");
        assert_eq!(sections[1].source, "a.md#notes-1");
    }

    #[test]
    fn thousands_of_repeated_headings_get_distinct_anchors() {
        let doc: String = (0..20_000)
            .map(|n| format!("## Notes\n\nText {n}.\n\n"))
            .collect();
        let sections = split_markdown("many.md", &doc);
        assert_eq!(sections.len(), 20_000);
        assert_eq!(sections[0].source, "many.md#notes");
        assert_eq!(sections[19_999].source, "many.md#notes-19999");
        let distinct: HashSet<&str> = sections.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(distinct.len(), 20_000);
        // A literal heading that looks like a generated anchor is still told apart.
        let mixed = split_markdown("m.md", "## A\n\nx\n\n## A-1\n\ny\n\n## A\n\nz\n");
        let anchors: Vec<&str> = mixed.iter().map(|s| s.source.as_str()).collect();
        assert_eq!(anchors, ["m.md#a", "m.md#a-1", "m.md#a-2"]);
    }

    #[test]
    fn long_sections_are_split_at_paragraphs() {
        let paragraph = "word ".repeat(100);
        let doc = format!("## Long\n\n{paragraph}\n\n{paragraph}\n\n{paragraph}\n\n{paragraph}\n");
        let sections = split_markdown("long.md", &doc);
        assert!(sections.len() >= 2);
        assert!(sections.iter().all(|s| s.title == "Long"));
    }

    #[test]
    fn plain_text_is_titled_by_file_name() {
        let sections = split_plain_text("docs/opening-hours.txt", "Open daily.\n\nClosed Sundays.");
        assert_eq!(sections.len(), 1);
        assert_eq!(sections[0].title, "Opening hours");
        assert_eq!(sections[0].source, "docs/opening-hours.txt#part-1");
    }
}
