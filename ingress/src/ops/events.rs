//! `GET /api/events`: server-sent events for a live operator view — `draft` (a new approval
//! item) and `decision` (an operator decided) — read from the Redis stream of
//! [`copydesk::events`].
//!
//! Each client gets its own Redis connection, because `XREAD BLOCK` holds the connection it
//! runs on (on the shared multiplexed connection it would stall every other request). The
//! newest event id is read *before* the response is answered, so anything published after
//! the client saw the headers is delivered; a reconnecting client's `Last-Event-ID` resumes
//! where it left off. A comment line goes out every [`KEEPALIVE`] so proxies keep the
//! connection open, and the stream ends (cleanly, with the final chunk) when the ingress
//! shuts down or Redis fails, which makes `EventSource` reconnect.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use copydesk::events::{is_stream_id, last_event_id, read_events, OpsEvent};
use copydesk::queue::Keys;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::error::OpsError;
use super::{OpsBody, OpsState};

/// How often an idle stream sends a keepalive comment (also the `XREAD BLOCK` time).
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// Most event streams open at once (each holds a Redis connection).
pub const MAX_STREAMS: usize = 64;
/// How long connecting the stream's own Redis connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnect delay suggested to `EventSource` clients (`retry:`), in ms.
const CLIENT_RETRY_MS: u64 = 3_000;

/// Opens an event stream.
pub(crate) async fn open(
    state: &OpsState,
    headers: &HeaderMap,
) -> Result<Response<OpsBody>, OpsError> {
    let permit = Arc::clone(&state.streams)
        .try_acquire_owned()
        .map_err(|_| OpsError::TooManyStreams)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        // Longer than the BLOCK, so an idle XREAD is never cut short by the client side.
        .set_response_timeout(Some(KEEPALIVE + Duration::from_secs(5)));
    let mut conn = tokio::time::timeout(
        CONNECT_TIMEOUT + Duration::from_secs(1),
        state
            .redis
            .get_multiplexed_async_connection_with_config(&config),
    )
    .await
    .map_err(|_| OpsError::Unavailable("connecting for the event stream timed out".into()))??;
    let keys = state.queue.keys().clone();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| is_stream_id(id));
    let after = match resume {
        Some(id) => id.to_owned(),
        None => last_event_id(&mut conn, &keys).await?,
    };
    let stream = EventStream {
        conn,
        keys,
        after,
        draining: state.draining.clone(),
        outbox: VecDeque::from([Bytes::from(format!(
            "retry: {CLIENT_RETRY_MS}\n: connected\n\n"
        ))]),
        done: false,
        _permit: permit,
    };
    let body = StreamBody::new(futures::stream::unfold(stream, EventStream::next_frame));
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One client's stream: what is left to send and where to read on from.
struct EventStream {
    conn: MultiplexedConnection,
    keys: Keys,
    after: String,
    draining: CancellationToken,
    outbox: VecDeque<Bytes>,
    done: bool,
    _permit: OwnedSemaphorePermit,
}

impl EventStream {
    /// The next chunk of the body; `None` ends it.
    async fn next_frame(mut self) -> Option<(Result<Frame<Bytes>, Infallible>, Self)> {
        loop {
            if let Some(chunk) = self.outbox.pop_front() {
                return Some((Ok(Frame::data(chunk)), self));
            }
            if self.done {
                return None;
            }
            let read = tokio::select! {
                biased;
                () = self.draining.cancelled() => return None,
                read = read_events(&mut self.conn, &self.keys, &self.after, KEEPALIVE) => read,
            };
            match read {
                Ok(events) if events.is_empty() => {
                    self.outbox
                        .push_back(Bytes::from_static(b": keepalive\n\n"));
                }
                Ok(events) => {
                    for event in events {
                        self.outbox.push_back(encode(&event));
                        self.after = event.id;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "event stream: redis read failed; closing the stream");
                    self.outbox.push_back(Bytes::from_static(
                        b"event: error\ndata: {\"message\":\"event source interrupted; reconnect\"}\n\n",
                    ));
                    self.done = true;
                }
            }
        }
    }
}

/// One SSE message: `id:`, `event:`, and a `data:` line per line of the payload.
fn encode(event: &OpsEvent) -> Bytes {
    let kind: String = event.kind.chars().filter(|c| !c.is_control()).collect();
    let mut out = format!(
        "id: {}\nevent: {}\n",
        event.id,
        if kind.is_empty() { "message" } else { &kind }
    );
    for line in event.data.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    if event.data.is_empty() {
        out.push_str("data: \n");
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_framed_for_sse() {
        let event = OpsEvent {
            id: "1-0".into(),
            kind: "decision".into(),
            data: "{\"a\":1}".into(),
        };
        assert_eq!(
            encode(&event),
            "id: 1-0\nevent: decision\ndata: {\"a\":1}\n\n"
        );
        let event = OpsEvent {
            id: "2-0".into(),
            kind: "dr\naft".into(),
            data: "line one\nline two".into(),
        };
        assert_eq!(
            encode(&event),
            "id: 2-0\nevent: draft\ndata: line one\ndata: line two\n\n"
        );
    }
}
