//! Reading ops requests: query parameters, path segments, bounded JSON bodies and their
//! fields, each failure a 400 (or 413) naming what is wrong.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use super::error::OpsError;

/// Largest accepted request body: an edited reply is a few KiB; 64 KiB leaves room.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a client may take to send the body once headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest accepted id in a path (approval ids are `{account}-{conversation}-{message}`,
/// dead-letter ids are ULIDs).
pub const MAX_ID_LEN: usize = 128;

/// Decoded `?a=b&c=d` parameters.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string (`+` is a space, `%xx` is decoded, bad escapes kept as is).
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(name, true), decode(value, true))
            })
            .collect();
        Self { pairs }
    }

    /// The first value of `name`, if present and not blank.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `name` as a number in `0..=max`, or `default` when absent.
    pub(crate) fn number(&self, name: &str, default: usize, max: usize) -> Result<usize, OpsError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| {
                    OpsError::BadRequest(format!(
                        "query parameter {name}={value:?} must be a whole number from 0 to {max}"
                    ))
                }),
        }
    }
}

/// Percent-decodes `raw` (and `+` as space when `plus_is_space`), lossily as UTF-8.
pub(crate) fn decode(raw: &str, plus_is_space: bool) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path segment that names an item: decoded, non-empty, short, printable.
pub(crate) fn path_id(raw: &str, what: &str) -> Result<String, OpsError> {
    let id = decode(raw, false);
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if ok {
        Ok(id)
    } else {
        Err(OpsError::BadRequest(format!(
            "{what} id in the path must be 1 to {MAX_ID_LEN} visible characters"
        )))
    }
}

/// Reads at most [`MAX_BODY_BYTES`]: a declared `Content-Length` over it is refused before
/// reading, a chunked body is counted as it streams.
pub(crate) async fn read_body(body: Incoming, headers: &HeaderMap) -> Result<Bytes, OpsError> {
    let limit = MAX_BODY_BYTES;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(OpsError::PayloadTooLarge { limit });
    }
    let collected = tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect())
        .await
        .map_err(|_| OpsError::BadRequest("the request body did not arrive in time".into()))?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(OpsError::PayloadTooLarge { limit }),
        Err(error) => Err(OpsError::BadRequest(format!(
            "could not read the request body: {error}"
        ))),
    }
}

/// A JSON object body.
#[derive(Debug)]
pub(crate) struct JsonBody {
    object: serde_json::Map<String, serde_json::Value>,
}

impl JsonBody {
    /// Parses `bytes` as a JSON object (an empty body is an empty object, so the answer names
    /// the first missing field rather than complaining about JSON).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, OpsError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self {
                object: serde_json::Map::new(),
            });
        }
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(serde_json::Value::Object(object)) => Ok(Self { object }),
            Ok(_) => Err(OpsError::BadRequest(
                "the body must be a JSON object".into(),
            )),
            Err(error) => Err(OpsError::BadRequest(format!(
                "the body is not valid JSON: {error}"
            ))),
        }
    }

    /// A required string field with visible text (kept as sent, minus outer whitespace).
    pub(crate) fn required(&self, field: &str) -> Result<String, OpsError> {
        match self.object.get(field) {
            None | Some(serde_json::Value::Null) => {
                Err(OpsError::BadRequest(format!("field {field:?} is required")))
            }
            Some(serde_json::Value::String(text)) if text.trim().is_empty() => Err(
                OpsError::BadRequest(format!("field {field:?} must not be empty")),
            ),
            Some(serde_json::Value::String(text)) => Ok(text.trim().to_owned()),
            Some(_) => Err(OpsError::BadRequest(format!(
                "field {field:?} must be a string"
            ))),
        }
    }

    /// An optional string field: absent, null or blank is `None`.
    pub(crate) fn optional(&self, field: &str) -> Result<Option<String>, OpsError> {
        match self.object.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text.trim().to_owned())),
            Some(_) => Err(OpsError::BadRequest(format!(
                "field {field:?} must be a string"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded() {
        let query = Query::parse(Some("status=pending&error=time%20out&q=a+b&empty=&flag"));
        assert_eq!(query.get("status"), Some("pending"));
        assert_eq!(query.get("error"), Some("time out"));
        assert_eq!(query.get("q"), Some("a b"));
        assert_eq!(query.get("empty"), None);
        assert_eq!(query.get("flag"), None);
        assert_eq!(query.get("missing"), None);
        assert_eq!(decode("%zz%4", false), "%zz%4");
        assert_eq!(decode("%E2%88%92", false), "\u{2212}");
    }

    #[test]
    fn numbers_are_bounded_and_named() {
        let query = Query::parse(Some("limit=20&offset=-1&big=1000"));
        assert_eq!(query.number("limit", 50, 500).expect("valid"), 20);
        assert_eq!(query.number("absent", 50, 500).expect("default"), 50);
        let err = query.number("offset", 0, 10).expect_err("negative");
        assert!(err.to_string().contains("offset"), "{err}");
        assert!(query.number("big", 0, 500).is_err());
    }

    #[test]
    fn body_fields_name_what_is_wrong() {
        let body =
            JsonBody::parse(br#"{"operator":"  ","content":5,"ok":" hi "}"#).expect("object");
        assert!(body
            .required("operator")
            .expect_err("blank")
            .to_string()
            .contains("operator"));
        assert!(body
            .required("content")
            .expect_err("number")
            .to_string()
            .contains("content"));
        assert!(body
            .required("missing")
            .expect_err("absent")
            .to_string()
            .contains("missing"));
        assert_eq!(body.required("ok").expect("text"), "hi");
        assert_eq!(body.optional("operator").expect("blank is none"), None);
        assert!(JsonBody::parse(b"[1]").is_err());
        assert!(JsonBody::parse(b"{").is_err());
        assert!(JsonBody::parse(b"").is_ok());
    }

    #[test]
    fn path_ids_are_checked() {
        assert_eq!(path_id("1-2-3", "approval").expect("valid"), "1-2-3");
        assert!(path_id("", "approval").is_err());
        assert!(path_id("a%20b", "approval").is_err());
        assert!(path_id(&"x".repeat(200), "approval").is_err());
    }
}
