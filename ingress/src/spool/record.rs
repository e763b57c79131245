//! The spool's on-disk record: one line per routed webhook, `{crc32:08x} {json}\n`.
//!
//! The JSON is the already-routed enqueue request, exactly what
//! [`QueueClient::enqueue_batch`](copydesk::queue::QueueClient::enqueue_batch) takes:
//! `{"v":1,"keys":[dedupe keys],"jobs":[{"queue","id","payload"}]}`. The CRC-32 (IEEE) covers
//! the JSON bytes. Compact JSON never holds a raw newline, so a record is a line; a line that
//! does not end in `\n` is a torn write (the process died mid-append, before the fsync that
//! precedes every 202), and a line whose checksum does not match is damaged. Both are skipped
//! without losing the lines around them. The format is plain text so an operator can read a
//! spool with `cut -c10- segment-*.jsonl | jq`.

use copydesk::jobs::ALL_QUEUES;
use copydesk::queue::NewJob;
use serde::{Deserialize, Serialize};

/// The record format version written today.
const VERSION: u8 = 1;
/// Width of the checksum field plus the separating space.
const HEADER_LEN: usize = 9;

/// One spooled enqueue request: the arguments of one `enqueue_batch` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolRecord {
    /// The webhook's dedupe keys (delivery id and cause), so a replay is harmless.
    pub dedupe_keys: Vec<String>,
    /// The encoded jobs, in routing order.
    pub jobs: Vec<NewJob>,
}

#[derive(Serialize)]
struct WireRecordRef<'a> {
    v: u8,
    keys: &'a [String],
    jobs: Vec<WireJobRef<'a>>,
}

#[derive(Serialize)]
struct WireJobRef<'a> {
    queue: &'a str,
    id: &'a str,
    payload: &'a str,
}

#[derive(Deserialize)]
struct WireRecord {
    v: u8,
    keys: Vec<String>,
    jobs: Vec<WireJob>,
}

#[derive(Deserialize)]
struct WireJob {
    queue: String,
    id: String,
    payload: String,
}

/// Why a line is not a usable record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line does not end in a newline: a torn (partial) write at the end of a file.
    #[error("torn record (no trailing newline): a write interrupted by a crash")]
    Torn,
    /// The checksum field is missing or malformed.
    #[error("no checksum header")]
    NoHeader,
    /// The checksum does not match the content.
    #[error("checksum mismatch: the record is damaged")]
    Checksum,
    /// The checksum matches but the JSON is not a record of a version we read.
    #[error("unreadable record: {0}")]
    Format(String),
    /// The record names a queue this build does not know (written by another version).
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
}

/// A line the reader could not use, kept for the log and the rejected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// Byte offset of the line in its file.
    pub offset: usize,
    /// The raw bytes, without the trailing newline.
    pub raw: Vec<u8>,
    /// Why it was skipped.
    pub error: LineError,
}

/// What a segment file holds: its usable records in order, and what was skipped.
#[derive(Debug, Default)]
pub struct ParsedSegment {
    /// Records, in the order they were appended.
    pub records: Vec<SpoolRecord>,
    /// Torn or damaged lines.
    pub bad: Vec<BadLine>,
}

impl SpoolRecord {
    /// The record as one line, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let wire = WireRecordRef {
            v: VERSION,
            keys: &self.dedupe_keys,
            jobs: self
                .jobs
                .iter()
                .map(|job| WireJobRef {
                    queue: job.queue,
                    id: &job.job_id,
                    payload: &job.payload,
                })
                .collect(),
        };
        let json = serde_json::to_vec(&wire).expect("strings always serialise to JSON");
        let mut line = Vec::with_capacity(HEADER_LEN + json.len() + 1);
        line.extend_from_slice(format!("{:08x} ", crc32(&json)).as_bytes());
        line.extend_from_slice(&json);
        line.push(b'\n');
        line
    }

    /// Reads one line (without its newline).
    pub fn decode(line: &[u8]) -> Result<Self, LineError> {
        let json = checked_json(line)?;
        let wire: WireRecord =
            serde_json::from_slice(json).map_err(|e| LineError::Format(e.to_string()))?;
        if wire.v != VERSION {
            return Err(LineError::Format(format!("version {}", wire.v)));
        }
        let jobs = wire
            .jobs
            .into_iter()
            .map(|job| {
                let queue = ALL_QUEUES
                    .iter()
                    .copied()
                    .find(|known| *known == job.queue)
                    .ok_or(LineError::UnknownQueue(job.queue))?;
                Ok(NewJob {
                    queue,
                    job_id: job.id,
                    payload: job.payload,
                    // A spooled job has waited already: it is enqueued at once, not as a burst.
                    burst_key: None,
                })
            })
            .collect::<Result<Vec<_>, LineError>>()?;
        Ok(Self {
            dedupe_keys: wire.keys,
            jobs,
        })
    }
}

/// The JSON of a line whose checksum matches.
fn checked_json(line: &[u8]) -> Result<&[u8], LineError> {
    if line.len() <= HEADER_LEN || line[HEADER_LEN - 1] != b' ' {
        return Err(LineError::NoHeader);
    }
    let expected = std::str::from_utf8(&line[..HEADER_LEN - 1])
        .ok()
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or(LineError::NoHeader)?;
    let json = &line[HEADER_LEN..];
    if crc32(json) == expected {
        Ok(json)
    } else {
        Err(LineError::Checksum)
    }
}

/// Splits a file into lines; the last chunk, if not newline-terminated, is torn.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8], bool)> {
    let mut offset = 0;
    std::iter::from_fn(move || {
        if offset >= bytes.len() {
            return None;
        }
        let rest = &bytes[offset..];
        let start = offset;
        match rest.iter().position(|b| *b == b'\n') {
            Some(end) => {
                offset += end + 1;
                Some((start, &rest[..end], true))
            }
            None => {
                offset = bytes.len();
                Some((start, rest, false))
            }
        }
    })
    .filter(|(_, line, _)| !line.is_empty())
}

/// Reads a whole segment file.
pub fn parse_segment(bytes: &[u8]) -> ParsedSegment {
    let mut parsed = ParsedSegment::default();
    for (offset, line, complete) in lines(bytes) {
        let result = if complete {
            SpoolRecord::decode(line)
        } else {
            Err(LineError::Torn)
        };
        match result {
            Ok(record) => parsed.records.push(record),
            Err(error) => parsed.bad.push(BadLine {
                offset,
                raw: line.to_vec(),
                error,
            }),
        }
    }
    parsed
}

/// How many complete lines with a valid checksum a file holds (startup accounting; cheaper
/// than decoding the JSON).
pub fn count_records(bytes: &[u8]) -> u64 {
    lines(bytes)
        .filter(|(_, line, complete)| *complete && checked_json(line).is_ok())
        .count() as u64
}

/// CRC-32 (IEEE 802.3, the zlib/PNG one), table-driven.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0_u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0_u32;
    for byte in data {
        crc = TABLE[((crc ^ u32::from(*byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u32) -> SpoolRecord {
        SpoolRecord {
            dedupe_keys: vec![format!("delivery:d-{n}"), format!("message_created:1:{n}")],
            jobs: vec![NewJob {
                queue: "lookup_knowledge",
                job_id: format!("job-{n}"),
                payload: format!(r#"{{"content":"line one\nline \"two\" {n}"}}"#),
                burst_key: None,
            }],
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_record_is_one_line_and_reads_back_the_same() {
        let line = record(1).encode();
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(line.last(), Some(&b'\n'));
        let decoded = SpoolRecord::decode(&line[..line.len() - 1]).expect("decodes");
        assert_eq!(decoded, record(1));
    }

    #[test]
    fn a_torn_tail_is_skipped_and_the_records_before_it_are_kept() {
        let mut file = [record(1).encode(), record(2).encode()].concat();
        let third = record(3).encode();
        file.extend_from_slice(&third[..third.len() / 2]);

        let parsed = parse_segment(&file);

        assert_eq!(parsed.records, vec![record(1), record(2)]);
        assert_eq!(parsed.bad.len(), 1);
        assert_eq!(parsed.bad[0].error, LineError::Torn);
        assert_eq!(count_records(&file), 2);
    }

    #[test]
    fn a_damaged_middle_record_is_skipped_without_losing_its_neighbours() {
        let mut damaged = record(2).encode();
        let at = damaged.len() - 5;
        damaged[at] ^= 0x01;
        let file = [record(1).encode(), damaged, record(3).encode()].concat();

        let parsed = parse_segment(&file);

        assert_eq!(parsed.records, vec![record(1), record(3)]);
        assert_eq!(parsed.bad[0].error, LineError::Checksum);
        assert_eq!(count_records(&file), 2);
    }

    #[test]
    fn an_unknown_queue_is_reported_not_guessed() {
        let line = String::from_utf8(record(1).encode())
            .expect("utf-8")
            .replace("lookup_knowledge", "future_queue");
        // The checksum no longer matches the edited JSON: re-sign it.
        let json = &line.as_bytes()[HEADER_LEN..line.len() - 1];
        let resigned = format!(
            "{:08x} {}",
            crc32(json),
            std::str::from_utf8(json).expect("utf-8")
        );

        let error = SpoolRecord::decode(resigned.as_bytes()).expect_err("unknown queue");

        assert_eq!(error, LineError::UnknownQueue("future_queue".into()));
    }
}
