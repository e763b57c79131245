//! Bearer-token check for the ops API: `Authorization: Bearer <COPYDESK_OPS_TOKEN>`, compared
//! in constant time so the answer's timing says nothing about how much of a guess was right.

use http::{header, HeaderMap};
use secrecy::{ExposeSecret, SecretString};

use super::error::OpsError;

/// Checks the request's bearer token against `token`.
pub(crate) fn check(token: &SecretString, headers: &HeaderMap) -> Result<(), OpsError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .ok_or(OpsError::Unauthorized)?;
    if constant_time_eq(presented.as_bytes(), token.expose_secret().as_bytes()) {
        Ok(())
    } else {
        Err(OpsError::Unauthorized)
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive, RFC 7235).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Equality whose time depends only on the lengths, not on where the first difference is.
/// (The token's length is not a secret worth hiding: it is fixed by whoever generated it.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let longest = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..longest {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            value.parse().expect("a valid header value"),
        );
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let token = SecretString::from("s3cret-token");
        assert!(check(&token, &headers("Bearer s3cret-token")).is_ok());
        assert!(check(&token, &headers("bearer s3cret-token")).is_ok());
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Basic s3cret-token",
            "s3cret-token",
            "Bearer ",
            "Bearer",
        ] {
            assert!(check(&token, &headers(wrong)).is_err(), "{wrong}");
        }
        assert!(check(&token, &HeaderMap::new()).is_err());
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
