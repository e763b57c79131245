//! The ingress's one accept loop, used by every listener (webhooks, ops API, metrics): a
//! connection cap per listener and per client address, and hyper's header limits.
//!
//! What a client that never authenticates can hold, per listener:
//! - at most [`MAX_CONNECTIONS_PER_ADDRESS`] connections from one address (a connection past
//!   it is closed at once), [`MAX_CONNECTIONS`] in all (further clients wait in the kernel's
//!   backlog);
//! - each connection at most [`HEADER_READ_TIMEOUT`] from its start (or from the end of its
//!   last answer, on keep-alive) to a complete request head: a silent or slow-header client is
//!   cut off then, without an answer;
//! - a request head of at most [`MAX_HEADER_BYTES`] in at most [`MAX_HEADERS`] fields (431
//!   beyond), in a read buffer of at most [`READ_BUFFER_BYTES`].
//!
//! Bodies are bounded by their handlers (the webhook's body deadline and budget: see
//! [`crate::budget`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::error::StartupError;
use crate::per_address::PerAddress;

/// How long a client may take from connecting (or from its last answer) to a complete
/// request head. Chatwoot sends a webhook at once; 5 s is generous for it and short for a
/// slowloris.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head (request line and header fields) accepted: 16 KiB, several
/// times a real Chatwoot webhook's (under 1 KiB). Larger heads get 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields in one request head.
pub const MAX_HEADERS: usize = 64;
/// The most a connection's read buffer grows to (hyper's default is about 400 KiB).
pub const READ_BUFFER_BYTES: usize = 32 * 1024;
/// Open connections per listener at most.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Open connections per listener from one client address at most.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 1_000;
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// The peer address of the connection a request came on, in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client address of `request` (unspecified if the request did not come through
    /// [`serve`], e.g. in a unit test).
    pub fn of<B>(request: &Request<B>) -> IpAddr {
        request
            .extensions()
            .get::<Self>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |addr| addr.0)
    }
}

/// A bound listener and what it is called in logs.
#[derive(Debug)]
pub struct Listener {
    name: &'static str,
    listener: TcpListener,
    addr: SocketAddr,
}

impl Listener {
    /// Binds `addr` (port 0 picks a free port; see [`Listener::addr`]).
    pub async fn bind(name: &'static str, addr: SocketAddr) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        Ok(Self {
            name,
            listener,
            addr,
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Accepts connections on `listener` until `stop` is cancelled and serves each with
/// `handler`, under the limits above; each connection is watched by `graceful` so shutdown
/// lets its current request finish. Dropping the listener on return refuses new connections.
pub async fn serve<H, F, B>(
    listener: Listener,
    handler: H,
    graceful: &GracefulShutdown,
    stop: CancellationToken,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Listener {
        name,
        listener,
        addr,
    } = listener;
    tracing::info!(listener = name, %addr, "listening");
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = PerAddress::new(MAX_CONNECTIONS_PER_ADDRESS);
    let mut refused_logged = false;
    loop {
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = Arc::clone(&connections).acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(listener = name, %error, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let ip = peer.ip();
        let Some(share) = per_address.try_take(ip, 1) else {
            if !refused_logged {
                refused_logged = true;
                tracing::warn!(listener = name, client = %ip, limit = MAX_CONNECTIONS_PER_ADDRESS, "a client address holds too many connections; closing the ones past the limit");
            }
            continue; // dropping the stream closes it
        };
        let _ = stream.set_nodelay(true);
        let service = service_fn({
            let handler = handler.clone();
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ClientAddr(ip));
                let answer = handler(request);
                async move { Ok::<_, Infallible>(answer.await) }
            }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_header_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS)
            .max_buf_size(READ_BUFFER_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(listener = name, %error, "connection ended with an error");
            }
            drop((slot, share));
        });
    }
    drop(listener);
}
