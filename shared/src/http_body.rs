//! Reading an upstream HTTP answer's body with a size cap: [`read_capped`].
//!
//! `Response::bytes()`/`text()` buffer whatever the server sends, so a hostile or broken
//! upstream (Chatwoot, an LLM, a retriever) can exhaust the worker's memory with one answer.
//! `read_capped` refuses a declared `Content-Length` over the cap before reading anything and
//! otherwise reads chunk by chunk, stopping as soon as the cap would be passed: at most `max`
//! bytes (plus one chunk in flight) are ever held.

use bytes::{Bytes, BytesMut};

/// Why a capped body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The answer is larger than the cap (declared by `Content-Length`, or found while
    /// reading). Nothing past the cap was buffered.
    #[error("the answer body is larger than the {limit}-byte cap{}", declared_text(*.declared))]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
        /// The `Content-Length` the server declared, if it declared one.
        declared: Option<u64>,
    },
    /// The connection failed while the body was read.
    #[error("reading the answer body failed")]
    Read(#[source] reqwest::Error),
}

impl BodyError {
    /// True for [`BodyError::TooLarge`].
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::TooLarge { .. })
    }
}

fn declared_text(declared: Option<u64>) -> String {
    declared.map_or_else(String::new, |n| format!(" (Content-Length {n})"))
}

/// Reads `response`'s body, at most `max` bytes; a longer body is [`BodyError::TooLarge`].
pub async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Bytes, BodyError> {
    let declared = response.content_length();
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge {
            limit: max,
            declared,
        });
    }
    let mut body = BytesMut::with_capacity(declared.map_or(0, |n| n as usize).min(max));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge {
                limit: max,
                declared,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-shot HTTP server answering `head` then `body_len` bytes of `x`, in 64 KiB writes.
    async fn serve(head: String, body_len: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = [0u8; 4096];
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
        format!("http://{addr}/")
    }

    async fn get(url: &str) -> reqwest::Response {
        reqwest::get(url).await.expect("the test server answers")
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_read_whole() {
        let url = serve(
            "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nconnection: close\r\n\r\n".into(),
            1000,
        )
        .await;
        let body = read_capped(get(&url).await, 1000).await.expect("fits");
        assert_eq!(body.len(), 1000);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_refused_before_reading() {
        let url = serve(
            "HTTP/1.1 200 OK\r\ncontent-length: 200000000\r\nconnection: close\r\n\r\n".into(),
            0,
        )
        .await;
        let err = read_capped(get(&url).await, 1024)
            .await
            .expect_err("too large");
        assert!(err.is_too_large(), "{err}");
        assert!(err.to_string().contains("1024-byte cap"), "{err}");
        assert!(err.to_string().contains("200000000"), "{err}");
    }

    #[tokio::test]
    async fn an_undeclared_stream_is_cut_at_the_cap() {
        // No Content-Length: the body runs until the connection closes (10 MiB here).
        let url = serve(
            "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".into(),
            10 * 1024 * 1024,
        )
        .await;
        let err = read_capped(get(&url).await, 256 * 1024)
            .await
            .expect_err("too large");
        assert!(
            matches!(err, BodyError::TooLarge { declared: None, .. }),
            "{err}"
        );
    }
}
