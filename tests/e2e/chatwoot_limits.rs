//! The Chatwoot client against a hostile upstream (issue 12 §4, §7): an answer over
//! `CHATWOOT_MAX_RESPONSE_BYTES` is a clear error read no further, and a redirect to another
//! host is not followed, so the API token never reaches it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use copydesk::chatwoot::{ChatwootClient, ChatwootConfig, ChatwootError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server answering every connection with `head`, then `body_len` bytes of `x`; counts the
/// connections it accepted.
async fn serve(head: String, body_len: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let head = head.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 8192];
                let _ = socket.read(&mut request).await;
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = body_len;
                while left > 0 {
                    let n = left.min(chunk.len());
                    if socket.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            });
        }
    });
    (format!("http://127.0.0.1:{port}"), accepted)
}

fn client(base_url: &str, max_response_bytes: usize) -> ChatwootClient {
    let mut config =
        ChatwootConfig::new(base_url, "secret-token".to_owned().into(), 1).expect("loopback URL");
    config.max_response_bytes = max_response_bytes;
    ChatwootClient::new(&config).expect("client")
}

#[tokio::test]
async fn an_answer_over_the_cap_is_a_clear_error() {
    // 200 MB, streamed without a Content-Length: the client must stop at the cap.
    let (url, _) = serve(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n".into(),
        200 * 1024 * 1024,
    )
    .await;
    let err = client(&url, 1024 * 1024)
        .get_conversation(5)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            ChatwootError::TooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("CHATWOOT_MAX_RESPONSE_BYTES"),
        "{err}"
    );
    assert!(!err.is_retryable());

    // A declared length over the cap is refused before reading.
    let (url, _) = serve(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 209715200\r\n\r\n"
            .into(),
        0,
    )
    .await;
    let err = client(&url, 1024 * 1024)
        .get_conversation(5)
        .await
        .expect_err("too large");
    assert!(matches!(err, ChatwootError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_and_the_token_stays_home() {
    let (elsewhere, reached) = serve(
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".into(),
        0,
    )
    .await;
    // `localhost` vs `127.0.0.1`: another host, as far as the client can tell.
    let target = elsewhere.replace("127.0.0.1", "localhost");
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
    ] {
        let (url, _) = serve(
            format!(
                "HTTP/1.1 {status}\r\nlocation: {target}/api/v1/accounts/1/conversations/5\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            ),
            0,
        )
        .await;
        let err = client(&url, 1024 * 1024)
            .get_conversation(5)
            .await
            .expect_err("not followed");
        assert!(matches!(err, ChatwootError::Redirect { .. }), "{err:?}");
        assert!(err.to_string().contains("not followed"), "{err}");
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the other host never saw a request (nor the token)"
    );
}
