//! Fuzzes the webhook signature verifier with arbitrary headers, bodies and clocks.
//!
//! The input is split into the `X-Chatwoot-Timestamp` and `X-Chatwoot-Signature` header
//! values (each possibly absent), the raw body and the verifier's clock. Half the time the
//! signature is replaced by a correct one over the fuzzed timestamp and body, so the fuzzer
//! also reaches the timestamp parsing and the staleness arithmetic (with clocks at the `i64`
//! extremes). Checked: no panic, a correctly signed in-window request is accepted, a
//! signature made with another secret or over another body never is.
#![no_main]

use std::time::Duration;

use copydesk::signature::{SignatureError, SignatureVerifier};
use hmac::{Hmac, Mac};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use sha2::Sha256;

const SECRET: &str = "copydesk-fuzz-secret";
const OTHER_SECRET: &str = "copydesk-fuzz-other-secret";
const TOLERANCE: Duration = Duration::from_secs(300);

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    timestamp: Option<&'a [u8]>,
    signature: Option<&'a [u8]>,
    /// Replace `signature` by a correct one for `timestamp` and `body`.
    sign_correctly: bool,
    now_unix_secs: i64,
    body: &'a [u8],
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `"{timestamp}.{body}"`), written independently of
/// the code under test.
fn sign(secret: &str, timestamp: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp);
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes())).into_bytes()
}

fuzz_target!(|input: Input<'_>| {
    let verifier = SignatureVerifier::new(
        vec![SecretString::from(OTHER_SECRET), SecretString::from(SECRET)],
        TOLERANCE,
    );
    let signature = match (input.sign_correctly, input.timestamp) {
        (true, Some(timestamp)) => Some(sign(SECRET, timestamp, input.body)),
        _ => input.signature.map(<[u8]>::to_vec),
    };
    let verdict = verifier.verify(
        input.timestamp,
        signature.as_deref(),
        input.body,
        input.now_unix_secs,
    );

    let Some(timestamp) = input.timestamp else {
        assert!(verdict.is_err(), "no timestamp, no entry");
        return;
    };
    if !input.sign_correctly {
        // Random bytes are a correct HMAC only with negligible probability.
        let correct = sign(SECRET, timestamp, input.body);
        let by_other = sign(OTHER_SECRET, timestamp, input.body);
        if signature.as_deref() != Some(&correct[..]) && signature.as_deref() != Some(&by_other[..])
        {
            assert!(verdict.is_err(), "an unsigned request was accepted");
        }
        return;
    }
    // Correctly signed: the verdict depends only on the timestamp.
    let signed_at = std::str::from_utf8(timestamp)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    match signed_at {
        None => assert_eq!(
            verdict,
            Err(SignatureError::MalformedHeader(
                copydesk::signature::TIMESTAMP_HEADER
            ))
        ),
        Some(signed_at) => {
            let skew = i128::from(input.now_unix_secs) - i128::from(signed_at);
            let in_window = skew.unsigned_abs() <= u128::from(TOLERANCE.as_secs());
            if in_window {
                assert_eq!(
                    verdict,
                    Ok(()),
                    "a correctly signed, fresh request was refused"
                );
            } else {
                assert!(
                    matches!(verdict, Err(SignatureError::Stale { .. })),
                    "skew {skew} s accepted or misreported: {verdict:?}"
                );
            }
            // The same headers over another body, or from a secret not configured, never pass.
            let mut other_body = input.body.to_vec();
            other_body.push(b' ');
            assert!(verifier
                .verify(
                    Some(timestamp),
                    signature.as_deref(),
                    &other_body,
                    signed_at
                )
                .is_err());
            let foreign = sign("not-configured", timestamp, input.body);
            assert_eq!(
                verifier.verify(Some(timestamp), Some(&foreign), input.body, signed_at),
                Err(SignatureError::Mismatch)
            );
        }
    }
});
