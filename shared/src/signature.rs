//! Verifying Chatwoot's webhook signature.
//!
//! Chatwoot (`lib/webhooks/trigger.rb`) sends `X-Chatwoot-Timestamp: <unix seconds>` and
//! `X-Chatwoot-Signature: sha256=<hex>` where the hex is
//! HMAC-SHA256(key = secret, message = `"{timestamp}.{raw body}"`). The check runs over the
//! raw request bytes (never re-serialised JSON), compares in constant time, accepts any of
//! several secrets (one per webhook, plus rotation) and rejects timestamps too far from now
//! in either direction, so a captured request cannot be replayed later.
//!
//! Secrets are bound to accounts ([`crate::accounts::Accounts`]): a payload is checked only
//! against the secrets of the account its body names (`account.id`), so a secret of account 1
//! cannot vouch for a payload about account 2. Secrets bound to no account (the
//! single-account shorthand without `CHATWOOT_ACCOUNT_ID`) pass for any account.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::accounts::Accounts;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-chatwoot-signature";
/// Header carrying the signed Unix timestamp.
pub const TIMESTAMP_HEADER: &str = "x-chatwoot-timestamp";
/// Header carrying the delivery id (not signed).
pub const DELIVERY_HEADER: &str = "x-chatwoot-delivery";
/// How far the signed timestamp may be from our clock, either way, by default.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a signature was refused. Every variant must be answered identically (401, same body),
/// so a caller learns nothing; the variant is for our logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A signature header is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header is present but not in the expected form.
    #[error("malformed {0} header")]
    MalformedHeader(&'static str),
    /// The signature is valid for no configured secret.
    #[error("signature matches no configured secret")]
    Mismatch,
    /// The signature is valid for no secret of the account the payload names (or it names
    /// no account and no secret is bound to none).
    #[error("signature matches no webhook secret of {}", account_label(*.0))]
    WrongAccount(Option<i64>),
    /// The signed timestamp is outside the tolerance.
    #[error("timestamp is {skew_secs} s away from now (tolerance {tolerance_secs} s)")]
    Stale {
        /// Now minus the timestamp (negative: from the future).
        skew_secs: i64,
        /// The configured tolerance.
        tolerance_secs: u64,
    },
}

/// Checks webhook signatures against the configured secrets.
#[derive(Debug, Clone)]
pub struct SignatureVerifier {
    accounts: Accounts,
    tolerance: Duration,
}

impl SignatureVerifier {
    /// A verifier accepting any of `secrets` for any account, with timestamps within
    /// `tolerance` of now.
    pub fn new(secrets: Vec<SecretString>, tolerance: Duration) -> Self {
        Self::with_accounts(Accounts::unbound(secrets), tolerance)
    }

    /// A verifier accepting a payload only with a secret of the account it names (or an
    /// unbound secret of `accounts`), with timestamps within `tolerance` of now.
    pub fn with_accounts(accounts: Accounts, tolerance: Duration) -> Self {
        Self {
            accounts,
            tolerance,
        }
    }

    /// The accounts (and their secrets and legacy tokens) this verifier checks against.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// The checks that need no body: both headers present and well formed, and the timestamp
    /// within the window. The ingress runs this before reading the body, so an unsigned or
    /// stale flood never makes it buffer bodies; [`SignatureVerifier::verify`] repeats it.
    pub fn precheck(
        &self,
        timestamp: Option<&[u8]>,
        signature: Option<&[u8]>,
        now_unix_secs: i64,
    ) -> Result<(), SignatureError> {
        let timestamp = timestamp.ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;
        let signature = signature.ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
        parse_signature(signature)?;
        let signed_at = parse_timestamp(timestamp)?;
        self.check_window(signed_at, now_unix_secs)
    }

    fn check_window(&self, signed_at: i64, now_unix_secs: i64) -> Result<(), SignatureError> {
        let skew_secs = now_unix_secs.saturating_sub(signed_at);
        if skew_secs.unsigned_abs() > self.tolerance.as_secs() {
            return Err(SignatureError::Stale {
                skew_secs,
                tolerance_secs: self.tolerance.as_secs(),
            });
        }
        Ok(())
    }

    /// Verifies the headers' values against the raw `body`, at `now_unix_secs`.
    ///
    /// The HMAC is checked before the timestamp so a stale verdict is only given to requests
    /// that were really signed by Chatwoot (the answer is the same either way).
    pub fn verify(
        &self,
        timestamp: Option<&[u8]>,
        signature: Option<&[u8]>,
        body: &[u8],
        now_unix_secs: i64,
    ) -> Result<(), SignatureError> {
        let timestamp = timestamp.ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;
        let signature = signature.ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
        let expected = parse_signature(signature)?;
        let signed_at = parse_timestamp(timestamp)?;
        let account = payload_account(body);
        let secrets = self.accounts.webhook_secrets_for(account);
        let matches = secrets.iter().any(|secret| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            else {
                return false;
            };
            mac.update(timestamp);
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        });
        if !matches {
            return Err(if self.accounts.ids().is_empty() {
                SignatureError::Mismatch
            } else {
                SignatureError::WrongAccount(account)
            });
        }
        self.check_window(signed_at, now_unix_secs)
    }
}

/// A delivery id derived from the body, for webhooks sent without `X-Chatwoot-Delivery`
/// (older Chatwoot): the same body always gets the same id.
pub fn body_delivery_id(body: &[u8]) -> crate::domain::DeliveryId {
    use sha2::Digest as _;
    let digest = Sha256::digest(body);
    // `body-` and 32 hex digits: visible ASCII, well under the id's length limit.
    crate::domain::DeliveryId::trusted(format!("body-{}", hex::encode(&digest[..16])))
}

/// `account N`, or `the payload's account (none named)`.
fn account_label(account: Option<i64>) -> String {
    match account {
        Some(id) => format!("account {id}"),
        None => "the payload's account (it names none)".into(),
    }
}

#[derive(Deserialize)]
struct AccountRef {
    id: i64,
}

#[derive(Deserialize)]
struct TopLevel {
    #[serde(default)]
    account: Option<AccountRef>,
}

#[derive(Deserialize)]
struct InConversation {
    conversation: TopLevel,
}

/// The account a webhook body names: its top-level `account.id` (every Chatwoot event
/// Copydesk routes has one), else, when there is no top-level `account` at all,
/// `conversation.account.id` (typing events). `None` when the body is not JSON or names
/// none. Other fields are skipped unparsed.
pub fn payload_account(body: &[u8]) -> Option<i64> {
    match serde_json::from_slice::<TopLevel>(body).ok()?.account {
        Some(account) => Some(account.id),
        None => serde_json::from_slice::<InConversation>(body)
            .ok()
            .and_then(|c| c.conversation.account)
            .map(|a| a.id),
    }
}

/// `sha256=<64 hex digits>` → the 32-byte digest.
fn parse_signature(signature: &[u8]) -> Result<Vec<u8>, SignatureError> {
    signature
        .strip_prefix(b"sha256=")
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
        .filter(|digest| digest.len() == 32)
        .ok_or(SignatureError::MalformedHeader(SIGNATURE_HEADER))
}

/// Unix seconds as decimal text.
fn parse_timestamp(timestamp: &[u8]) -> Result<i64, SignatureError> {
    std::str::from_utf8(timestamp)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or(SignatureError::MalformedHeader(TIMESTAMP_HEADER))
}

pub use crate::accounts::parse_secrets;

#[cfg(test)]
mod tests {
    use super::*;

    /// `signature_example.json`: the vector computed with Chatwoot's own algorithm.
    fn example() -> (String, String, String, String) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/chatwoot/signature_example.json"
        );
        let text = std::fs::read_to_string(path).expect("signature_example.json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let s = |x: &serde_json::Value| x.as_str().expect("a string").to_owned();
        (
            s(&v["secret"]),
            s(&v["headers"]["X-Chatwoot-Timestamp"]),
            s(&v["headers"]["X-Chatwoot-Signature"]),
            s(&v["body"]),
        )
    }

    fn verifier(secrets: &str) -> SignatureVerifier {
        SignatureVerifier::new(parse_secrets(secrets), DEFAULT_TOLERANCE)
    }

    #[test]
    fn chatwoot_example_vector_verifies() {
        let (secret, ts, sig, body) = example();
        let now: i64 = ts.parse().expect("digits");
        let result = verifier(&format!("other-secret, {secret}")).verify(
            Some(ts.as_bytes()),
            Some(sig.as_bytes()),
            body.as_bytes(),
            now + 10,
        );
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn tampered_body_wrong_secret_and_bad_headers_are_refused() {
        let (secret, ts, sig, body) = example();
        let now: i64 = ts.parse().expect("digits");
        let v = verifier(&secret);
        let tampered = body.replace("1203", "1204");
        assert_eq!(
            v.verify(
                Some(ts.as_bytes()),
                Some(sig.as_bytes()),
                tampered.as_bytes(),
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verifier("nope").verify(
                Some(ts.as_bytes()),
                Some(sig.as_bytes()),
                body.as_bytes(),
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify(None, Some(sig.as_bytes()), body.as_bytes(), now),
            Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            v.verify(
                Some(ts.as_bytes()),
                Some(&sig.as_bytes()[7..]),
                body.as_bytes(),
                now
            ),
            Err(SignatureError::MalformedHeader(SIGNATURE_HEADER))
        );
        assert_eq!(
            v.verify(Some(b"soon"), Some(sig.as_bytes()), body.as_bytes(), now),
            Err(SignatureError::MalformedHeader(TIMESTAMP_HEADER))
        );
    }

    #[test]
    fn timestamps_outside_the_window_are_refused_both_ways() {
        let (secret, ts, sig, body) = example();
        let signed: i64 = ts.parse().expect("digits");
        let v = verifier(&secret);
        let at = |now| {
            v.verify(
                Some(ts.as_bytes()),
                Some(sig.as_bytes()),
                body.as_bytes(),
                now,
            )
        };
        assert_eq!(at(signed + 300), Ok(()));
        assert_eq!(at(signed - 300), Ok(()));
        assert!(matches!(
            at(signed + 301),
            Err(SignatureError::Stale { skew_secs: 301, .. })
        ));
        assert!(matches!(
            at(signed - 301),
            Err(SignatureError::Stale {
                skew_secs: -301,
                ..
            })
        ));
    }

    #[test]
    fn precheck_refuses_missing_malformed_and_stale_headers_without_a_body() {
        let (secret, timestamp, signature, _body) = example();
        let v = verifier(&secret);
        let now: i64 = timestamp.parse().expect("numeric");
        let (t, s) = (Some(timestamp.as_bytes()), Some(signature.as_bytes()));
        assert_eq!(v.precheck(t, s, now), Ok(()));
        assert_eq!(
            v.precheck(None, s, now),
            Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            v.precheck(t, Some(b"sha256=zz"), now),
            Err(SignatureError::MalformedHeader(SIGNATURE_HEADER))
        );
        assert!(matches!(
            v.precheck(t, s, now + 301),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn a_secret_vouches_only_for_its_own_account() {
        use crate::accounts::{Account, Accounts};
        let body = br#"{"event":"message_created","account":{"id":2,"name":"B"},"id":5}"#;
        let now = 1_785_147_330_i64;
        let ts = now.to_string();
        let sign = |secret: &str| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
            mac.update(ts.as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        };
        let account = |id, secret: &str| Account {
            id,
            api_token: None,
            webhook_secrets: parse_secrets(secret),
            legacy_token: None,
        };
        let verify = |accounts: Vec<Account>, signed_with: &str| {
            SignatureVerifier::with_accounts(
                Accounts::new(accounts).expect("valid"),
                DEFAULT_TOLERANCE,
            )
            .verify(
                Some(ts.as_bytes()),
                Some(sign(signed_with).as_bytes()),
                body,
                now,
            )
        };
        let both = || vec![account(1, "secret-one"), account(2, "secret-two")];
        assert_eq!(verify(both(), "secret-two"), Ok(()));
        assert_eq!(
            verify(both(), "secret-one"),
            Err(SignatureError::WrongAccount(Some(2))),
            "account 1's secret does not vouch for account 2's payload"
        );
        assert_eq!(
            verify(vec![account(1, "secret-two")], "secret-two"),
            Err(SignatureError::WrongAccount(Some(2))),
            "an unconfigured account is refused whatever the secret"
        );
        let unbound = SignatureVerifier::new(parse_secrets("secret-one"), DEFAULT_TOLERANCE);
        assert_eq!(
            unbound.verify(
                Some(ts.as_bytes()),
                Some(sign("secret-one").as_bytes()),
                body,
                now
            ),
            Ok(()),
            "unbound secrets (the shorthand without CHATWOOT_ACCOUNT_ID) pass for any account"
        );
    }

    #[test]
    fn the_payload_account_is_the_top_level_one() {
        assert_eq!(
            payload_account(br#"{"account":{"id":2},"conversation":{"account":{"id":1}}}"#),
            Some(2)
        );
        assert_eq!(
            payload_account(br#"{"event":"x","conversation":{"account":{"id":3}}}"#),
            Some(3)
        );
        assert_eq!(
            payload_account(br#"{"account":{"id":"2"},"conversation":{"account":{"id":1}}}"#),
            None
        );
        assert_eq!(payload_account(b"not json"), None);
        assert_eq!(payload_account(br#"{"event":"x"}"#), None);
    }

    #[test]
    fn secrets_list_skips_blanks() {
        assert_eq!(parse_secrets(" a, ,b ,").len(), 2);
        assert!(parse_secrets(" , ").is_empty());
    }
}
