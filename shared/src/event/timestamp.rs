//! Chatwoot timestamps in every shape its webhooks use.
//!
//! One payload mixes three formats: ISO 8601 strings (`"2026-07-27T10:15:30.532Z"`, a
//! message's `created_at`), integer Unix seconds (`1785147330`, a conversation's `created_at`)
//! and float Unix seconds (`1785147330.5481`, a conversation's `updated_at`). [`Timestamp`]
//! accepts all three and keeps Unix milliseconds.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time from a webhook, as Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Unix milliseconds.
    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// Whole Unix seconds (rounded down).
    pub fn unix_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Parses an RFC 3339 / ISO 8601 string such as `2026-07-27T10:15:30.532Z`, or a string
    /// holding Unix seconds.
    pub fn parse_str(text: &str) -> Option<Self> {
        if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
            let ms = at.unix_timestamp_nanos().div_euclid(1_000_000);
            return i64::try_from(ms).ok().map(Self);
        }
        text.trim()
            .parse::<f64>()
            .ok()
            .and_then(Self::from_secs_f64)
    }

    /// Float Unix seconds, rounded down to the millisecond; `None` when not finite or out of range.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        let ms = (secs * 1000.0).floor();
        // i64 holds ±9.2e18 ms; anything near that is not a real Chatwoot time.
        (ms.is_finite() && ms.abs() < 1e17).then_some(Self(ms as i64))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unix seconds (integer or float) or an ISO 8601 timestamp string")
    }

    fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Timestamp, E> {
        secs.checked_mul(1000)
            .map(Timestamp)
            .ok_or_else(|| E::custom(format!("timestamp {secs} is out of range")))
    }

    fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Timestamp, E> {
        i64::try_from(secs)
            .map_err(|_| E::custom(format!("timestamp {secs} is out of range")))
            .and_then(|secs| self.visit_i64(secs))
    }

    fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Timestamp, E> {
        Timestamp::from_secs_f64(secs)
            .ok_or_else(|| E::custom(format!("timestamp {secs} is out of range")))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
        Timestamp::parse_str(text).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Timestamp {
        serde_json::from_str(json).expect("a valid timestamp")
    }

    #[test]
    fn iso_integer_and_float_forms_agree() {
        assert_eq!(
            parse("\"2026-07-27T10:15:30.532Z\"").unix_ms(),
            1_785_147_330_532
        );
        assert_eq!(parse("1785147330").unix_ms(), 1_785_147_330_000);
        assert_eq!(parse("1785147330.5481").unix_ms(), 1_785_147_330_548);
        assert_eq!(
            parse("\"2026-07-27T12:15:30+02:00\"").unix_secs(),
            1_785_147_330
        );
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"").expect_err("not a timestamp");
        assert!(err.to_string().contains("ISO 8601"), "{err}");
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }
}
