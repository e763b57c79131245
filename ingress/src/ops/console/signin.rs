//! Sign-in and sign-out. An operator signs in with their own Chatwoot access token: Copydesk
//! calls Chatwoot's `GET /api/v1/profile` with it once, accepts the user only if the profile
//! lists the configured account, keeps their id, name, email and role in that account in the
//! session, and forgets the token. The ops token signs in as `admin`.

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::http::{read_form, redirect, safe_next};
use super::pages;
use super::session::{removal_cookie, session_cookie, CookiePolicy, SessionUser};
use super::Console;
use crate::ops::{OpsBody, OpsState};
use crate::server::ClientAddr;

/// Longest access token accepted in the form.
const MAX_TOKEN_LEN: usize = 512;

/// `/ui/signin?next=…`.
pub fn signin_url(next: &str) -> String {
    format!(
        "/ui/signin?next={}",
        super::http::encode(&safe_next(Some(next)))
    )
}

/// `GET /ui/signin`.
pub(crate) fn form(console: &Console, request: &Request<Incoming>) -> Response<OpsBody> {
    let query = crate::ops::request::Query::parse(request.uri().query());
    let next = safe_next(query.get("next"));
    pages::signin(&console.config, &next, None, StatusCode::OK)
}

/// The profile fields sign-in needs (`user` schema of the Application API).
#[derive(Debug, Deserialize)]
struct Profile {
    id: i64,
    #[serde(default)]
    name: String,
    #[serde(default)]
    available_name: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    accounts: Vec<ProfileAccount>,
}

#[derive(Debug, Deserialize)]
struct ProfileAccount {
    id: i64,
    #[serde(default)]
    role: Option<String>,
}

/// Why a token did not sign anyone in, in words.
enum Refusal {
    BadToken,
    NotInAccount(i64),
    Unreachable,
}

/// `POST /ui/signin` with `token` and `next`.
pub(crate) async fn submit(
    ops: &OpsState,
    console: &Console,
    request: Request<Incoming>,
) -> Response<OpsBody> {
    let client = ClientAddr::of(&request).to_string();
    let embedded = request
        .headers()
        .get("sec-fetch-dest")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|dest| dest.eq_ignore_ascii_case("iframe"));
    let (parts, body) = request.into_parts();
    let config = &console.config;
    let form = match read_form(body, &parts.headers).await {
        Ok(form) => form,
        Err(error) => {
            return pages::signin(
                config,
                "/ui/",
                Some(&error.message()),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    let next = safe_next(form.get("next").map(String::as_str));
    match console
        .sessions
        .signin_allowed(&client, config.signin_per_minute)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return pages::signin(
                config,
                &next,
                Some("Too many sign-in attempts from this address; wait a minute and try again."),
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Err(error) => {
            tracing::warn!(%error, "console: sign-in limit unavailable");
            return pages::signin(
                config,
                &next,
                Some("Copydesk cannot reach its Redis right now; try again in a moment."),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    }
    let token = SecretString::from(form.get("token").map_or("", |t| t.trim()).to_owned());
    if token.expose_secret().is_empty() || token.expose_secret().len() > MAX_TOKEN_LEN {
        return pages::signin(
            config,
            &next,
            Some("Paste your Chatwoot access token (Profile settings → Access token)."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let user = if ops.is_ops_token(&token) {
        Ok(SessionUser {
            agent_id: None,
            name: "admin".into(),
            email: String::new(),
            role: "admin".into(),
        })
    } else {
        verify_with_chatwoot(console, &token).await
    };
    let user = match user {
        Ok(user) => user,
        Err(refusal) => {
            let (status, message) = match refusal {
                Refusal::BadToken => (
                    StatusCode::UNAUTHORIZED,
                    "Chatwoot did not accept that access token. Copy it again from Chatwoot → Profile settings → Access token.".to_owned(),
                ),
                Refusal::NotInAccount(account) => (
                    StatusCode::FORBIDDEN,
                    format!("That Chatwoot user is not a member of account {account}, which this Copydesk serves."),
                ),
                Refusal::Unreachable => (
                    StatusCode::BAD_GATEWAY,
                    "Chatwoot could not be reached to check the token; try again in a moment.".to_owned(),
                ),
            };
            tracing::info!(%client, %status, "console sign-in refused");
            return pages::signin(config, &next, Some(&message), status);
        }
    };
    let id = match console.sessions.create(&user).await {
        Ok(id) => id,
        Err(error) => {
            tracing::warn!(%error, "console: session not stored");
            return pages::signin(
                config,
                &next,
                Some("Copydesk cannot reach its Redis right now; try again in a moment."),
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
    };
    tracing::info!(operator = %user.name, agent_id = ?user.agent_id, role = %user.role, "console sign-in");
    let policy = CookiePolicy {
        insecure: config.insecure_cookies,
        embedded,
    };
    let mut response = redirect(&next);
    if let Ok(value) = HeaderValue::from_str(&session_cookie(&id, policy, config.session_ttl)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Asks Chatwoot who the token belongs to; the token goes no further than this call.
async fn verify_with_chatwoot(
    console: &Console,
    token: &SecretString,
) -> Result<SessionUser, Refusal> {
    let config = &console.config;
    let url = format!("{}/api/v1/profile", config.chatwoot_base_url);
    let response = console
        .http
        .get(url)
        .header("api_access_token", token.expose_secret())
        .send()
        .await
        .map_err(|error| {
            tracing::warn!(%error, "console sign-in: Chatwoot unreachable");
            Refusal::Unreachable
        })?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Refusal::BadToken);
    }
    if !status.is_success() {
        tracing::warn!(%status, "console sign-in: Chatwoot answered the profile call with an error");
        return Err(Refusal::Unreachable);
    }
    let profile: Profile = response.json().await.map_err(|error| {
        tracing::warn!(%error, "console sign-in: unreadable profile");
        Refusal::Unreachable
    })?;
    let account = profile
        .accounts
        .iter()
        .find(|a| config.serves_account(a.id))
        .ok_or(Refusal::NotInAccount(config.account_id))?;
    let name = if profile.name.trim().is_empty() {
        profile.available_name.unwrap_or_default()
    } else {
        profile.name
    };
    Ok(SessionUser {
        agent_id: Some(profile.id),
        name,
        email: profile.email,
        role: account.role.clone().unwrap_or_else(|| "agent".into()),
    })
}

/// `POST /ui/signout`: deletes the session and the cookie.
pub(crate) async fn signout(
    console: &Console,
    session: Option<&str>,
    request: &Request<Incoming>,
) -> Response<OpsBody> {
    if let Some(id) = session {
        if let Err(error) = console.sessions.delete(id).await {
            tracing::warn!(%error, "console: session not deleted");
        }
    }
    let embedded = request
        .headers()
        .get("sec-fetch-dest")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|dest| dest.eq_ignore_ascii_case("iframe"));
    let mut response = redirect("/ui/signin");
    let policy = CookiePolicy {
        insecure: console.config.insecure_cookies,
        embedded,
    };
    if let Ok(value) = HeaderValue::from_str(&removal_cookie(policy)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
