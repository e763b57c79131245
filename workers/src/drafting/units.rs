//! Cutting a passage into quotable units: sentences of its prose and items of its lists.
//! Table rows are skipped (they read badly in a reply); inline Markdown emphasis is removed.

/// What a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// A sentence of a paragraph.
    Sentence,
    /// One item of a bulleted or numbered list.
    ListItem,
}

/// A quotable piece of a passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unit {
    pub(crate) kind: UnitKind,
    pub(crate) text: String,
}

/// `- x`, `* x`, `+ x`, `1. x`, `2) x` → `x`.
fn list_item(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    for marker in ["- ", "* ", "+ "] {
        if let Some(rest) = trimmed.strip_prefix(marker) {
            return Some(rest);
        }
    }
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits <= 3 {
        let rest = &trimmed[digits..];
        if let Some(rest) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some(rest);
        }
    }
    None
}

fn clean_inline(text: &str) -> String {
    let text = text.replace("**", "").replace("__", "").replace('`', "");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits prose into sentences at `.`, `!` or `?` followed by a space and a capital letter,
/// a digit or a quote (so "e.g. a" and "3/8 inch" stay whole).
pub(crate) fn sentences(prose: &str) -> Vec<String> {
    let chars: Vec<char> = prose.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, c) in chars.iter().enumerate() {
        current.push(*c);
        let ends = matches!(c, '.' | '!' | '?')
            && chars.get(i + 1).is_some_and(|n| n.is_whitespace())
            && chars
                .get(i + 2)
                .is_some_and(|n| n.is_uppercase() || n.is_ascii_digit() || *n == '"');
        if ends {
            out.push(current.trim().to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// The units of a passage, in order.
pub(crate) fn units(text: &str) -> Vec<Unit> {
    let mut result = Vec::new();
    let mut paragraph = String::new();
    let mut item: Option<String> = None;

    let flush_paragraph = |paragraph: &mut String, result: &mut Vec<Unit>| {
        for sentence in sentences(&clean_inline(paragraph)) {
            result.push(Unit {
                kind: UnitKind::Sentence,
                text: sentence,
            });
        }
        paragraph.clear();
    };
    let flush_item = |item: &mut Option<String>, result: &mut Vec<Unit>| {
        if let Some(text) = item.take() {
            let text = clean_inline(&text);
            if !text.is_empty() {
                result.push(Unit {
                    kind: UnitKind::ListItem,
                    text,
                });
            }
        }
    };

    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('|') || trimmed.starts_with("```") {
            flush_item(&mut item, &mut result);
            flush_paragraph(&mut paragraph, &mut result);
            continue;
        }
        if let Some(rest) = list_item(line) {
            flush_item(&mut item, &mut result);
            flush_paragraph(&mut paragraph, &mut result);
            item = Some(rest.to_owned());
        } else if let Some(current) = item.as_mut().filter(|_| line.starts_with([' ', '\t'])) {
            current.push(' ');
            current.push_str(trimmed);
        } else {
            flush_item(&mut item, &mut result);
            paragraph.push(' ');
            paragraph.push_str(trimmed);
        }
    }
    flush_item(&mut item, &mut result);
    flush_paragraph(&mut paragraph, &mut result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_lists_and_tables_become_units() {
        let text = "Do this first, e.g. now:\n\n1. Stop the engine.\n2. No sparks\n   near the car.\n\n| a | b |\n| --- | --- |\n\nAN-6 = 6/16 = 3/8 inch. The same rule **works** for AN-8.";
        let units = units(text);
        let texts: Vec<&str> = units.iter().map(|u| u.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "Do this first, e.g. now:",
                "Stop the engine.",
                "No sparks near the car.",
                "AN-6 = 6/16 = 3/8 inch.",
                "The same rule works for AN-8."
            ]
        );
        assert_eq!(units[1].kind, UnitKind::ListItem);
        assert_eq!(units[3].kind, UnitKind::Sentence);
    }
}
