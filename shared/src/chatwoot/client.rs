//! [`ChatwootClient`]: one async method per Chatwoot Application API call Copydesk makes.
//!
//! Shaped like zero-to-production's `EmailClient`: it owns a pooled HTTP client, the base URL,
//! the account id, the secret token and the timeout. Every call counts itself in
//! `copydesk_chatwoot_requests_total{endpoint, status}` and fails with a classified
//! [`ChatwootError`].
//!
//! Hostile or broken upstreams: answers are read with a size cap
//! (`CHATWOOT_MAX_RESPONSE_BYTES`, [`crate::http_body::read_capped`]); redirects are followed
//! only within the same origin (scheme, host and port), because the token is a custom header
//! that reqwest would otherwise carry to any host a redirect names; every write passes the job
//! lease fence first ([`crate::queue::ensure_held`]).

use std::time::Duration;

use reqwest::{redirect, Method, RequestBuilder};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::config::ChatwootConfig;
use super::error::ChatwootError;
use super::types::{
    Agent, AssignOutcome, Assignment, Conversation, ConversationList, ConversationPriority,
    ConversationStatus, Message, MessageList, MessagePage, NewMessage, StatusChange,
    StatusChangeAnswer, Team, TogglePriorityBody, ToggleStatusBody,
};
use crate::http_body::{read_capped, BodyError};
use crate::metrics::CHATWOOT_REQUESTS_TOTAL;

/// The header Chatwoot reads the access token from.
pub const TOKEN_HEADER: &str = "api_access_token";

/// Longest wait for a TCP/TLS connection; failing here means nothing was sent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Redirects followed at most, all within the same origin.
const MAX_REDIRECTS: usize = 5;

/// How much of an error answer's body is read (only its start is kept for the message).
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// How many pages of 20 [`ChatwootClient::find_message_by_idempotency_key`] reads backwards.
pub const IDEMPOTENCY_SCAN_PAGES: usize = 10;

/// A client for one Chatwoot account.
#[derive(Debug, Clone)]
pub struct ChatwootClient {
    http: reqwest::Client,
    base_url: String,
    account_id: i64,
    api_token: SecretString,
    max_response_bytes: usize,
}

impl ChatwootClient {
    /// A client for the configured account. Fails only if the HTTP client cannot be built
    /// (e.g. no TLS roots).
    pub fn new(config: &ChatwootConfig) -> Result<Self, ChatwootError> {
        Ok(Self::with_http(Self::http_client(config.timeout)?, config))
    }

    /// The pooled HTTP client a [`ChatwootClient`] uses (timeouts, same-origin redirects),
    /// to share between the clients of several accounts ([`Self::with_http`]).
    pub fn http_client(timeout: Duration) -> Result<reqwest::Client, ChatwootError> {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .user_agent(concat!("copydesk/", env!("CARGO_PKG_VERSION")))
            .redirect(same_origin_redirects())
            .build()
            .map_err(|source| ChatwootError::Setup {
                endpoint: "client",
                source,
            })
    }

    /// A client for `config`'s account and token on an existing HTTP client (built with
    /// [`Self::http_client`]).
    pub fn with_http(http: reqwest::Client, config: &ChatwootConfig) -> Self {
        Self {
            http,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            account_id: config.account_id,
            api_token: config.api_token.clone(),
            max_response_bytes: config.max_response_bytes,
        }
    }

    /// The account every call is made in.
    pub fn account_id(&self) -> i64 {
        self.account_id
    }

    /// `POST /api/v1/accounts/{account}/conversations/{id}/messages`: creates a message
    /// (build it with [`NewMessage::private_note`] or [`NewMessage::public_reply`]).
    pub async fn create_message(
        &self,
        conversation_id: i64,
        message: &NewMessage,
    ) -> Result<Message, ChatwootError> {
        let url = self.url(&format!("conversations/{conversation_id}/messages"));
        self.call(
            "create_message",
            self.request(Method::POST, &url).json(message),
        )
        .await
    }

    /// Posts a private note (a draft for the agents).
    pub async fn post_private_note(
        &self,
        conversation_id: i64,
        content: &str,
    ) -> Result<Message, ChatwootError> {
        self.create_message(conversation_id, &NewMessage::private_note(content))
            .await
    }

    /// `GET .../conversations/{id}/messages` with `before`/`after` paging.
    pub async fn list_messages(
        &self,
        conversation_id: i64,
        page: MessagePage,
    ) -> Result<MessageList, ChatwootError> {
        let url = self.url(&format!("conversations/{conversation_id}/messages"));
        let request = match page {
            MessagePage::Latest => self.request(Method::GET, &url),
            MessagePage::Before(id) => self.request(Method::GET, &url).query(&[("before", id)]),
            MessagePage::After(id) => self.request(Method::GET, &url).query(&[("after", id)]),
        };
        self.call("list_messages", request).await
    }

    /// The message carrying this idempotency key among the conversation's latest
    /// [`IDEMPOTENCY_SCAN_PAGES`] × 20 messages, if any: call before re-posting after an
    /// ambiguous failure.
    pub async fn find_message_by_idempotency_key(
        &self,
        conversation_id: i64,
        key: &str,
    ) -> Result<Option<Message>, ChatwootError> {
        let mut page = MessagePage::Latest;
        for _ in 0..IDEMPOTENCY_SCAN_PAGES {
            let list = self.list_messages(conversation_id, page).await?;
            if let Some(found) = list
                .messages
                .iter()
                .find(|m| m.idempotency_key() == Some(key))
            {
                return Ok(Some(found.clone()));
            }
            match list.messages.iter().map(|m| m.id).min() {
                Some(oldest) => page = MessagePage::Before(oldest),
                None => break,
            }
        }
        Ok(None)
    }

    /// `GET .../conversations/{id}`: status, priority, assignee, team, contact, last message.
    pub async fn get_conversation(
        &self,
        conversation_id: i64,
    ) -> Result<Conversation, ChatwootError> {
        let url = self.url(&format!("conversations/{conversation_id}"));
        self.call("get_conversation", self.request(Method::GET, &url))
            .await
    }

    /// `GET .../conversations?status=all&assignee_type=all&page={page}`: one page (1-based)
    /// of every conversation, most recent activity first (Chatwoot's default order).
    pub async fn list_conversations(&self, page: u32) -> Result<ConversationList, ChatwootError> {
        let url = self.url("conversations");
        let page = page.max(1).to_string();
        let query = [
            ("status", "all"),
            ("assignee_type", "all"),
            ("page", page.as_str()),
        ];
        self.call(
            "list_conversations",
            self.request(Method::GET, &url).query(&query),
        )
        .await
    }

    /// `POST .../conversations/{id}/toggle_status` with an explicit status (and, for
    /// `snoozed`, an optional reopen time in Unix seconds). The only way to change status:
    /// `PUT .../conversations/{id}` ignores it.
    pub async fn toggle_status(
        &self,
        conversation_id: i64,
        status: ConversationStatus,
        snoozed_until: Option<i64>,
    ) -> Result<StatusChange, ChatwootError> {
        let url = self.url(&format!("conversations/{conversation_id}/toggle_status"));
        let body = ToggleStatusBody {
            status,
            snoozed_until,
        };
        let answer: StatusChangeAnswer = self
            .call(
                "toggle_status",
                self.request(Method::POST, &url).json(&body),
            )
            .await?;
        Ok(answer.payload)
    }

    /// `POST .../conversations/{id}/toggle_priority`; `None` clears it. Chatwoot answers an
    /// empty 200.
    pub async fn toggle_priority(
        &self,
        conversation_id: i64,
        priority: Option<ConversationPriority>,
    ) -> Result<(), ChatwootError> {
        let url = self.url(&format!("conversations/{conversation_id}/toggle_priority"));
        let body = TogglePriorityBody { priority };
        self.call_raw(
            "toggle_priority",
            self.request(Method::POST, &url).json(&body),
        )
        .await?;
        Ok(())
    }

    /// `POST .../conversations/{id}/assignments`: an agent, a team, or nobody. Check the
    /// outcome: Chatwoot answers 200 `null` (and unassigns) for an unknown agent id.
    pub async fn assign(
        &self,
        conversation_id: i64,
        assignment: Assignment,
    ) -> Result<AssignOutcome, ChatwootError> {
        const ENDPOINT: &str = "assign";
        let url = self.url(&format!("conversations/{conversation_id}/assignments"));
        let bytes = self
            .call_raw(
                ENDPOINT,
                self.request(Method::POST, &url).json(&assignment.body()),
            )
            .await?;
        let decode = |source| ChatwootError::Decode {
            endpoint: ENDPOINT,
            source,
        };
        let value: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(decode)?
        };
        if value.is_null() {
            return Ok(AssignOutcome::Cleared);
        }
        Ok(match assignment {
            Assignment::Team(_) => {
                AssignOutcome::Team(serde_json::from_value(value).map_err(decode)?)
            }
            Assignment::Agent(_) | Assignment::Unassign => {
                AssignOutcome::Agent(serde_json::from_value(value).map_err(decode)?)
            }
        })
    }

    /// `GET .../agents`: every agent of the account with `availability_status`.
    pub async fn list_agents(&self) -> Result<Vec<Agent>, ChatwootError> {
        self.call(
            "list_agents",
            self.request(Method::GET, &self.url("agents")),
        )
        .await
    }

    /// `GET /api/v1/profile`: the user the API token belongs to (Copydesk's own agent or
    /// bot user, which routing must never pick).
    pub async fn profile(&self) -> Result<Agent, ChatwootError> {
        let url = format!("{}/api/v1/profile", self.base_url);
        self.call("profile", self.request(Method::GET, &url)).await
    }

    /// `GET .../teams`.
    pub async fn list_teams(&self) -> Result<Vec<Team>, ChatwootError> {
        self.call("list_teams", self.request(Method::GET, &self.url("teams")))
            .await
    }

    /// `GET .../teams/{id}/team_members`.
    pub async fn list_team_members(&self, team_id: i64) -> Result<Vec<Agent>, ChatwootError> {
        let url = self.url(&format!("teams/{team_id}/team_members"));
        self.call("list_team_members", self.request(Method::GET, &url))
            .await
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/api/v1/accounts/{}/{path}",
            self.base_url, self.account_id
        )
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(TOKEN_HEADER, self.api_token.expose_secret())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        request: RequestBuilder,
    ) -> Result<T, ChatwootError> {
        let bytes = self.call_raw(endpoint, request).await?;
        serde_json::from_slice(&bytes).map_err(|source| ChatwootError::Decode { endpoint, source })
    }

    /// Sends, counts, and returns a 2xx answer's body; any other outcome is an error. A write
    /// (anything but `GET`) is sent only while the running job still holds its lease
    /// ([`crate::queue::ensure_held`]): a worker resumed after a stall never races its
    /// successor with a second public reply.
    #[tracing::instrument(name = "chatwoot", skip_all, fields(
        otel.name = endpoint, otel.kind = "client", endpoint,
        http.response.status_code = tracing::field::Empty))]
    async fn call_raw(
        &self,
        endpoint: &'static str,
        request: RequestBuilder,
    ) -> Result<Vec<u8>, ChatwootError> {
        let request = request
            .build()
            .map_err(|source| ChatwootError::Setup { endpoint, source })?;
        if request.method() != Method::GET {
            crate::queue::ensure_held()
                .map_err(|source| ChatwootError::LeaseLost { endpoint, source })?;
        }
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(e) => {
                count(endpoint, "error".to_owned());
                return Err(ChatwootError::from_transport(endpoint, e));
            }
        };
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        count(endpoint, status.as_u16().to_string());
        if !status.is_success() {
            // Only the start of an error body is kept: read little, and never fail on it.
            let body = read_capped(response, MAX_ERROR_BODY_BYTES.min(self.max_response_bytes))
                .await
                .unwrap_or_default();
            let mut error = ChatwootError::from_status(endpoint, status.as_u16(), &body);
            if status.is_redirection() {
                error = ChatwootError::Redirect {
                    endpoint,
                    status: status.as_u16(),
                };
            }
            return Err(error);
        }
        // A body lost after a 2xx status: the call was applied, the caller cannot see how.
        match read_capped(response, self.max_response_bytes).await {
            Ok(body) => Ok(body.to_vec()),
            Err(BodyError::Read(e)) => Err(ChatwootError::from_transport(endpoint, e)),
            Err(BodyError::TooLarge { limit, .. }) => {
                Err(ChatwootError::TooLarge { endpoint, limit })
            }
        }
    }
}

/// Follows a redirect only to the same scheme, host and port as the URL that answered it,
/// at most [`MAX_REDIRECTS`] times; anything else is returned as the 3xx answer (an error).
fn same_origin_redirects() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().last().is_some_and(|from| {
            from.scheme() == attempt.url().scheme()
                && from.host_str() == attempt.url().host_str()
                && from.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

fn count(endpoint: &'static str, status: String) {
    metrics::counter!(CHATWOOT_REQUESTS_TOTAL, "endpoint" => endpoint, "status" => status)
        .increment(1);
}
