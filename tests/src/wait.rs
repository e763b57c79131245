//! Waiting on an observable condition with a deadline, instead of sleeping and hoping: every
//! helper polls, returns as soon as the condition holds, and panics naming what it waited for
//! when the deadline passes (the deadline only keeps a hung run from hanging; it is no timing
//! assertion).

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often the helpers look again.
pub const POLL: Duration = Duration::from_millis(20);

/// Waits until `done()` holds; panics "timed out after … waiting for {what}" past `within`.
pub async fn wait_until(what: impl Display, within: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < until,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `probe()` yields `Some`, and returns it; panics naming `what` past `within`.
pub async fn wait_for<T, F, Fut>(what: impl Display, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < until,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the async `check()` is true; panics naming `what` past `within`.
pub async fn wait_until_async<F, Fut>(what: impl Display, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, within, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await;
}
