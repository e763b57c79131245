//! A word-level diff of an edited reply against the draft, shown before the edit is sent.

/// One run of words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// In both.
    Same(String),
    /// Only in the draft.
    Removed(String),
    /// Only in the edit.
    Added(String),
}

/// Largest `draft words × edit words` diffed word by word; longer texts are shown as a
/// whole removal and addition.
pub const MAX_CELLS: usize = 4_000_000;

/// The word diff of `before` → `after` (longest common subsequence of words).
pub fn words(before: &str, after: &str) -> Vec<Chunk> {
    let a: Vec<&str> = before.split_whitespace().collect();
    let b: Vec<&str> = after.split_whitespace().collect();
    if a.len().saturating_mul(b.len()) > MAX_CELLS {
        return vec![Chunk::Removed(a.join(" ")), Chunk::Added(b.join(" "))];
    }
    // lcs[i][j]: common words of a[i..] and b[j..].
    let width = b.len() + 1;
    let mut lcs = vec![0_u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let mut out: Vec<Chunk> = Vec::new();
    let mut push = |chunk: Chunk| {
        let merged = match (out.last_mut(), &chunk) {
            (Some(Chunk::Same(s)), Chunk::Same(w))
            | (Some(Chunk::Removed(s)), Chunk::Removed(w))
            | (Some(Chunk::Added(s)), Chunk::Added(w)) => {
                s.push(' ');
                s.push_str(w);
                true
            }
            _ => false,
        };
        if !merged {
            out.push(chunk);
        }
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            push(Chunk::Same(a[i].to_owned()));
            i += 1;
            j += 1;
        } else if j < b.len()
            && (i == a.len() || lcs[i * width + j + 1] >= lcs[(i + 1) * width + j])
        {
            push(Chunk::Added(b[j].to_owned()));
            j += 1;
        } else {
            push(Chunk::Removed(a[i].to_owned()));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_words_are_marked() {
        let diff = words(
            "Use AN-6 fittings for this line",
            "Use AN-8 fittings for the line",
        );
        assert_eq!(
            diff,
            vec![
                Chunk::Same("Use".into()),
                Chunk::Added("AN-8".into()),
                Chunk::Removed("AN-6".into()),
                Chunk::Same("fittings for".into()),
                Chunk::Added("the".into()),
                Chunk::Removed("this".into()),
                Chunk::Same("line".into()),
            ]
        );
        assert_eq!(words("a b", "a b"), vec![Chunk::Same("a b".into())]);
    }
}
