//! Response building, the security headers every console answer carries, the same-origin
//! check of state-changing requests, and bounded form bodies.

use std::collections::HashMap;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::config::ConsoleConfig;
use crate::ops::OpsBody;

/// Largest form body: room for a 20 000-character reply percent-encoded, so an overlong one
/// is answered in words rather than refused unread.
pub const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> OpsBody {
    Full::new(bytes.into()).boxed_unsync()
}

/// An HTML page.
pub fn html(status: StatusCode, markup: maud::Markup) -> Response<OpsBody> {
    let mut response = Response::new(full(markup.into_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Plain text.
pub fn text(status: StatusCode, message: &str) -> Response<OpsBody> {
    let mut response = Response::new(full(format!("{message}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `303 See Other` to a console path.
pub fn redirect(location: &str) -> Response<OpsBody> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The Content-Security-Policy: scripts and styles only from the console itself (no inline
/// script), framing only by the configured Chatwoot origins.
pub fn content_security_policy(config: &ConsoleConfig) -> String {
    let mut ancestors = String::from("'self'");
    for origin in &config.frame_ancestors {
        ancestors.push(' ');
        ancestors.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )
}

/// Adds CSP, `nosniff`, no-store caching and a strict referrer policy.
pub fn security_headers(config: &ConsoleConfig, response: &mut Response<OpsBody>) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_security_policy(config)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// True when a state-changing request comes from a console page: `Sec-Fetch-Site:
/// same-origin`, or (older browsers) an `Origin` whose host is the request's `Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin");
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => reqwest::Url::parse(origin).is_ok_and(|url| {
            let origin_host = match (url.host_str(), url.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                _ => return false,
            };
            origin_host.eq_ignore_ascii_case(host)
        }),
        _ => false,
    }
}

/// Why a form could not be read.
#[derive(Debug)]
pub enum FormError {
    /// Over [`MAX_FORM_BYTES`].
    TooLarge,
    /// Unreadable or not `application/x-www-form-urlencoded`.
    Invalid(String),
}

impl FormError {
    /// The message shown.
    pub fn message(&self) -> String {
        match self {
            Self::TooLarge => format!(
                "The form is larger than {} MiB; nothing was saved. Shorten the text.",
                MAX_FORM_BYTES / (1024 * 1024)
            ),
            Self::Invalid(why) => format!("The form could not be read: {why}"),
        }
    }
}

/// A submitted form's fields (the last value of a repeated name wins).
pub async fn read_form(
    body: Incoming,
    headers: &HeaderMap,
) -> Result<HashMap<String, String>, FormError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_FORM_BYTES as u64) {
        return Err(FormError::TooLarge);
    }
    let collected = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        Limited::new(body, MAX_FORM_BYTES).collect(),
    )
    .await
    .map_err(|_| FormError::Invalid("it did not arrive in time".into()))?;
    let bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(FormError::TooLarge)
        }
        Err(error) => return Err(FormError::Invalid(error.to_string())),
    };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&bytes).map_err(|e| FormError::Invalid(e.to_string()))?;
    Ok(pairs.into_iter().collect())
}

/// A console path safe to send the browser back to: `/ui/…`, never another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with("/ui")
                && !path.starts_with("//")
                && !path.contains(['\\', '\r', '\n'])
                && path.len() <= 512 =>
        {
            path.to_owned()
        }
        _ => "/ui/".to_owned(),
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (for query strings).
pub fn encode(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn only_same_origin_requests_change_state() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8081"),
            ("host", "127.0.0.1:8081")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8081")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:8081")
        ])));
        assert!(!same_origin(&headers(&[])));
    }

    #[test]
    fn next_paths_stay_in_the_console() {
        assert_eq!(
            safe_next(Some("/ui/approvals/1-2-3")),
            "/ui/approvals/1-2-3"
        );
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui/");
        assert_eq!(safe_next(Some("//evil.example/ui")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }
}
