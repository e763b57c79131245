//! `copydesk learning export --since …`: the learning records (draft, final text, decision,
//! edit distance, diff summary …) as JSON Lines.

use std::io::Write as _;

use anyhow::Context as _;
use copydesk::learning::read_since;
use copydesk::queue::QueueClient;

/// Parses `--since`: Unix milliseconds, an RFC 3339 time, or a duration back from now
/// (`30m`, `24h`, `7d`).
pub(super) fn parse_since(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(time) =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok((time.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let error = || {
        format!(
            "cannot read --since {text:?}: use Unix ms, an RFC 3339 time (2026-11-24T10:00:00Z) or a duration like 24h or 7d"
        )
    };
    // The unit is the last character, whatever its width (`7д` is an error, not a panic).
    let Some((at, unit)) = text.char_indices().last() else {
        return Err(error());
    };
    let factor: i64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(error()),
    };
    let n: i64 = text[..at].parse().map_err(|_| error())?;
    if n < 0 {
        return Err(error());
    }
    n.checked_mul(factor)
        .and_then(|back| copydesk::domain::now_ms().checked_sub(back))
        .ok_or_else(|| format!("--since {text:?} reaches back further than a timestamp can"))
}

/// Writes every record since `since_ms` as one JSON object per line to `out` (stdout when
/// `None`); returns how many.
pub(super) async fn export(
    client: &QueueClient,
    since_ms: i64,
    out: Option<&std::path::Path>,
) -> anyhow::Result<usize> {
    let mut conn = client.connection();
    let records = read_since(&mut conn, client.keys(), since_ms).await?;
    let mut writer: Box<dyn std::io::Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for record in &records {
        serde_json::to_writer(&mut writer, record)?;
        writer.write_all(b"\n")?;
    }
    writer.flush()?;
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_reads_ms_rfc3339_and_durations() {
        assert_eq!(parse_since("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_since("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        let day_ago = parse_since("1d").expect("a duration");
        let now = copydesk::domain::now_ms();
        assert!((now - day_ago - 86_400_000).abs() < 5_000);
        assert!(parse_since("yesterday").is_err_and(|e| e.contains("--since")));
    }

    #[test]
    fn bad_units_and_huge_durations_are_errors_not_panics() {
        for text in ["7д", "д", "", "-3d", "1.5h", "d", "7w"] {
            assert!(
                parse_since(text).is_err_and(|e| e.contains("--since")),
                "{text:?} must be a clear error"
            );
        }
        let huge = format!("{}d", i64::MAX);
        assert!(parse_since(&huge).is_err_and(|e| e.contains("further than")));
        assert!(parse_since("106751991168d").is_err(), "ms overflow");
    }
}
