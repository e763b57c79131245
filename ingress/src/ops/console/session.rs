//! Console sessions: a random 256-bit id in a cookie, the operator's identity in Redis under
//! `{prefix}:ui:session:{id}` with a sliding TTL. Sign-out deletes it. Also the per-address
//! sign-in limit.

use std::time::Duration;

use cookie::{Cookie, SameSite};
use copydesk::queue::QueueClient;
use http::{header, HeaderMap};
use rand::RngCore;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "copydesk_session";

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    /// The Chatwoot user id (`None` for the ops-token admin).
    pub agent_id: Option<i64>,
    /// Display name.
    pub name: String,
    /// Email (empty for the ops-token admin).
    pub email: String,
    /// The role in the configured account: `agent` or `administrator` (`admin` for the
    /// ops-token sign-in).
    pub role: String,
}

impl SessionUser {
    /// May retry and purge dead letters: Chatwoot administrators and the ops-token admin.
    pub fn is_admin(&self) -> bool {
        matches!(self.role.as_str(), "administrator" | "admin")
    }

    /// The identity recorded with a decision.
    pub fn identity(&self) -> copydesk::operator::OperatorIdentity {
        match self.agent_id {
            Some(id) => copydesk::operator::OperatorIdentity::chatwoot_agent(id, &self.name),
            None => copydesk::operator::OperatorIdentity::named(&self.name),
        }
    }
}

/// Session storage on the queue's Redis.
#[derive(Debug, Clone)]
pub struct Sessions {
    queue: QueueClient,
    ttl: Duration,
}

impl Sessions {
    /// Sessions living `ttl` after their last use.
    pub fn new(queue: QueueClient, ttl: Duration) -> Self {
        Self { queue, ttl }
    }

    fn key(&self, id: &str) -> String {
        self.queue.keys().console_session(id)
    }

    /// Stores a new session for `user`; returns its id (64 hex digits).
    pub async fn create(&self, user: &SessionUser) -> redis::RedisResult<String> {
        let mut bytes = [0_u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let json = serde_json::to_string(user).unwrap_or_default();
        let mut conn = self.queue.connection();
        let () = conn
            .set_ex(self.key(&id), json, self.ttl.as_secs().max(1))
            .await?;
        Ok(id)
    }

    /// The session's user, extending its TTL (`GETEX … EX`); `None` when unknown or expired.
    pub async fn touch(&self, id: &str) -> redis::RedisResult<Option<SessionUser>> {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut conn = self.queue.connection();
        let json: Option<String> = redis::cmd("GETEX")
            .arg(self.key(id))
            .arg("EX")
            .arg(self.ttl.as_secs().max(1))
            .query_async(&mut conn)
            .await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Deletes the session.
    pub async fn delete(&self, id: &str) -> redis::RedisResult<()> {
        let mut conn = self.queue.connection();
        conn.del(self.key(id)).await
    }

    /// Counts a sign-in attempt from `client`; false once more than `per_minute` were made in
    /// the current minute.
    pub async fn signin_allowed(&self, client: &str, per_minute: u32) -> redis::RedisResult<bool> {
        let minute = copydesk::approvals::now_ms() / 60_000;
        let key = self.queue.keys().console_signin_attempts(client, minute);
        let mut conn = self.queue.connection();
        let (count,): (u64,) = redis::pipe()
            .incr(&key, 1)
            .expire(&key, 120)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(count <= u64::from(per_minute))
    }
}

/// The session id the request's `Cookie` header carries, if any.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE_NAME)
        .map(|c| c.value().to_owned())
}

/// How the cookie is set.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    /// Leave `Secure` off (only when explicitly configured, and never when embedded).
    pub insecure: bool,
    /// The console is framed by another site: `SameSite=None; Partitioned` (which browsers
    /// accept only with `Secure`).
    pub embedded: bool,
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(id: &str, policy: CookiePolicy, ttl: Duration) -> String {
    let mut cookie = Cookie::build((COOKIE_NAME, id.to_owned()))
        .path("/ui")
        .http_only(true)
        .max_age(cookie::time::Duration::seconds(ttl.as_secs() as i64));
    cookie = if policy.embedded {
        cookie
            .same_site(SameSite::None)
            .secure(true)
            .partitioned(true)
    } else {
        cookie.same_site(SameSite::Lax).secure(!policy.insecure)
    };
    cookie.build().to_string()
}

/// The `Set-Cookie` value that removes the cookie (both variants share name and path).
pub fn removal_cookie(policy: CookiePolicy) -> String {
    let mut cookie = Cookie::build((COOKIE_NAME, ""))
        .path("/ui")
        .http_only(true)
        .max_age(cookie::time::Duration::ZERO);
    cookie = if policy.embedded {
        cookie
            .same_site(SameSite::None)
            .secure(true)
            .partitioned(true)
    } else {
        cookie.same_site(SameSite::Lax).secure(!policy.insecure)
    };
    cookie.build().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_the_required_flags() {
        let ttl = Duration::from_secs(60);
        let top = session_cookie(
            "abc",
            CookiePolicy {
                insecure: false,
                embedded: false,
            },
            ttl,
        );
        for flag in [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/ui",
            "Max-Age=60",
        ] {
            assert!(top.contains(flag), "{top} lacks {flag}");
        }
        let framed = session_cookie(
            "abc",
            CookiePolicy {
                insecure: true,
                embedded: true,
            },
            ttl,
        );
        for flag in ["HttpOnly", "Secure", "SameSite=None", "Partitioned"] {
            assert!(framed.contains(flag), "{framed} lacks {flag}");
        }
        let demo = session_cookie(
            "abc",
            CookiePolicy {
                insecure: true,
                embedded: false,
            },
            ttl,
        );
        assert!(!demo.contains("Secure"), "{demo}");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; copydesk_session=ff00; b=2".parse().expect("valid"),
        );
        assert_eq!(session_id(&headers).as_deref(), Some("ff00"));
        assert_eq!(session_id(&HeaderMap::new()), None);
    }
}
