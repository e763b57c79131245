//! The ingress end to end: real binary's library `build()`, a private `redis-server` per test,
//! a unique key prefix per test, webhooks signed like Chatwoot's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use copydesk_testkit::ingress_app::SECOND_TEST_SECRET;
use copydesk_testkit::testbed::TestBed;
use copydesk_testkit::wait::wait_until_async;
use copydesk_testkit::webhook::{self, new_delivery_id, unix_now, WebhookSender};
use futures::StreamExt;
use serde_json::Value;
use tokio::net::TcpStream;

async fn json_body(response: reqwest::Response) -> Value {
    response.json().await.expect("every answer has a JSON body")
}

#[tokio::test]
async fn signed_customer_message_is_queued_once_and_redeliveries_are_answered_200() {
    // Arrange
    let (_bed, app) = TestBed::with_ingress("dedupe").await;
    let payload = webhook::incoming_message(5001, 301, "Where is my order?");
    let delivery = new_delivery_id();

    // Act
    let first = app.post_webhook_as(&payload, &delivery).await;
    let first_status = first.status();
    let first_body = json_body(first).await;
    let same_delivery = app.post_webhook_as(&payload, &delivery).await;
    let new_delivery = app.post_webhook(&payload).await;

    // Assert
    assert_eq!(first_status, 202, "{first_body}");
    assert_eq!(first_body["status"], "queued");
    let lookups = app.queued_jobs("lookup_knowledge").await;
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    assert_eq!(lookups[0]["message_id"], 5001);
    assert_eq!(lookups[0]["conversation_id"], 301);
    assert_eq!(lookups[0]["content"], "Where is my order?");
    assert_eq!(lookups[0]["meta"]["delivery_id"], delivery.as_str());
    assert_eq!(app.queued_jobs("track_conversation").await.len(), 1);
    assert_eq!(same_delivery.status(), 200);
    assert_eq!(json_body(same_delivery).await["status"], "duplicate");
    assert_eq!(new_delivery.status(), 200);
    assert_eq!(json_body(new_delivery).await["status"], "duplicate");
    assert_eq!(
        app.queued_jobs("lookup_knowledge").await.len(),
        1,
        "redeliveries enqueue nothing"
    );
}

#[tokio::test]
async fn every_signature_failure_is_the_same_401_and_enqueues_nothing() {
    // Arrange
    let (_bed, app) = TestBed::with_ingress("signature").await;
    let body = webhook::chatwoot_json(&webhook::incoming_message(5002, 302, "hello"));
    let wrong_secret = WebhookSender::new(app.http.clone(), app.sender.url(), "not-the-secret");
    let now = unix_now();

    // Act
    let attempts = [
        (
            "wrong secret",
            wrong_secret.signed(body.clone(), &new_delivery_id(), now),
        ),
        (
            "missing headers",
            app.sender.unsigned(body.clone(), &new_delivery_id()),
        ),
        (
            "malformed signature",
            app.sender
                .unsigned(body.clone(), &new_delivery_id())
                .header("X-Chatwoot-Timestamp", now.to_string())
                .header("X-Chatwoot-Signature", "sha256=not-hex"),
        ),
        (
            "301 s old",
            app.sender
                .signed(body.clone(), &new_delivery_id(), now - 301),
        ),
        (
            "301 s ahead",
            app.sender
                .signed(body.clone(), &new_delivery_id(), now + 301),
        ),
    ];
    let mut answers = Vec::new();
    for (case, request) in attempts {
        let response = request.send().await.expect("the ingress answers");
        answers.push((
            case,
            response.status(),
            response.text().await.expect("a body"),
        ));
    }

    // Assert
    let (_, _, reference_body) = &answers[0];
    for (case, status, body) in &answers {
        assert_eq!(*status, 401, "{case}");
        assert_eq!(body, reference_body, "{case}: every 401 has the same body");
    }
    assert!(app.queued_jobs("lookup_knowledge").await.is_empty());
    assert!(app.queued_jobs("track_conversation").await.is_empty());
}

#[tokio::test]
async fn a_webhook_signed_with_the_second_configured_secret_is_accepted() {
    let (_bed, app) = TestBed::with_ingress("second-secret").await;
    let rotated = WebhookSender::new(app.http.clone(), app.sender.url(), SECOND_TEST_SECRET);

    let response = rotated
        .post(&webhook::incoming_message(5003, 303, "hi"))
        .await
        .expect("answer");

    assert_eq!(response.status(), 202);
    assert_eq!(app.queued_jobs("lookup_knowledge").await.len(), 1);
}

#[tokio::test]
async fn broken_json_is_400_and_says_where() {
    let (_bed, app) = TestBed::with_ingress("broken-json").await;

    let response = app
        .sender
        .signed(
            br#"{"event":"message_created","id":"#.to_vec(),
            &new_delivery_id(),
            unix_now(),
        )
        .send()
        .await
        .expect("answer");

    assert_eq!(response.status(), 400);
    let body = json_body(response).await;
    assert_eq!(body["error"], "malformed");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("line 1 column"),
        "{body}"
    );
}

#[tokio::test]
async fn a_message_event_missing_a_needed_field_is_400_naming_it() {
    let (_bed, app) = TestBed::with_ingress("missing-field").await;
    let mut payload = webhook::incoming_message(5004, 304, "hi");
    payload
        .as_object_mut()
        .expect("an object")
        .remove("conversation");

    let response = app.post_webhook(&payload).await;

    assert_eq!(response.status(), 400);
    let body = json_body(response).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("missing field `conversation`"),
        "{body}"
    );
}

#[tokio::test]
async fn a_two_mib_body_is_413() {
    let (_bed, app) = TestBed::with_ingress("too-large").await;
    let body = vec![b' '; 2 * 1024 * 1024];

    let response = app
        .sender
        .signed(body, &new_delivery_id(), unix_now())
        .send()
        .await
        .expect("answer");

    assert_eq!(response.status(), 413);
    assert_eq!(json_body(response).await["error"], "payload_too_large");
}

#[tokio::test]
async fn a_50_mib_chunked_upload_is_refused_without_being_read() {
    // Arrange: a chunked body (no Content-Length) that counts what the server pulled.
    let (_bed, app) = TestBed::with_ingress("chunked").await;
    const CHUNK: usize = 64 * 1024;
    const TOTAL: usize = 50 * 1024 * 1024;
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&produced);
    let chunks = futures::stream::iter(0..TOTAL / CHUNK).map(move |_| {
        counter.fetch_add(CHUNK, Ordering::Relaxed);
        Ok::<_, std::io::Error>(hyper::body::Frame::data(bytes::Bytes::from(vec![
            b' ';
            CHUNK
        ])))
    });

    // Act
    let result = app
        .sender
        .unsigned(Vec::new(), &new_delivery_id())
        .body(reqwest::Body::wrap(http_body_util::StreamBody::new(chunks)))
        .send()
        .await;

    // Assert: a 413, or the connection closed under the client; either way not read through.
    if let Ok(response) = result {
        assert_eq!(response.status(), 413);
    }
    let sent = produced.load(Ordering::Relaxed);
    assert!(
        sent < TOTAL / 2,
        "the server pulled {sent} bytes of a {TOTAL}-byte upload"
    );
}

#[tokio::test]
async fn unknown_events_and_private_notes_are_ignored_with_200() {
    let (_bed, app) = TestBed::with_ingress("ignored").await;

    let unknown = app
        .post_webhook(&webhook::unknown_event("captain_thought_about_it"))
        .await;
    let note = app.post_webhook(&webhook::private_note(5005, 305)).await;

    assert_eq!(unknown.status(), 200);
    assert_eq!(json_body(unknown).await["status"], "ignored");
    assert_eq!(note.status(), 200);
    let note_body = json_body(note).await;
    assert_eq!(note_body["status"], "ignored");
    assert_eq!(note_body["reason"], "private note");
    assert!(app.queued_jobs("lookup_knowledge").await.is_empty());
    assert!(app.queued_jobs("track_conversation").await.is_empty());
}

#[tokio::test]
async fn conversation_created_queues_assignment_and_tracking() {
    let (_bed, app) = TestBed::with_ingress("conversation-created").await;

    let response = app.post_webhook(&webhook::conversation_created(306)).await;

    assert_eq!(response.status(), 202);
    assert_eq!(json_body(response).await["jobs"], 2);
    let assignments = app.queued_jobs("assign_conversation").await;
    assert_eq!(assignments.len(), 1);
    assert_eq!(assignments[0]["conversation_id"], 306);
    assert_eq!(assignments[0]["reason"]["kind"], "new_conversation");
    let tracked = app.queued_jobs("track_conversation").await;
    assert_eq!(tracked.len(), 1);
    assert_eq!(tracked[0]["change"]["kind"], "created");
}

#[tokio::test]
async fn successive_conversation_updates_are_each_tracked_but_a_resend_is_not() {
    let (_bed, app) = TestBed::with_ingress("updates").await;

    let first = app
        .post_webhook(&webhook::conversation_updated(307, 1_785_147_522.184))
        .await;
    let resent = app
        .post_webhook(&webhook::conversation_updated(307, 1_785_147_522.184))
        .await;
    let later = app
        .post_webhook(&webhook::conversation_updated(307, 1_785_147_600.5))
        .await;

    assert_eq!(
        [first.status(), resent.status(), later.status()].map(|s| s.as_u16()),
        [202, 200, 202]
    );
    assert_eq!(app.queued_jobs("track_conversation").await.len(), 2);
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_get_json_404_and_405() {
    let (_bed, app) = TestBed::with_ingress("paths").await;

    let missing = app.get("/nope").await;
    let wrong_method = app.get("/webhooks/chatwoot").await;

    assert_eq!(missing.status(), 404);
    assert_eq!(json_body(missing).await["error"], "not_found");
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");
    assert_eq!(json_body(wrong_method).await["error"], "method_not_allowed");
}

#[tokio::test]
async fn metrics_count_webhooks_by_known_event_names_only() {
    let (_bed, app) = TestBed::with_ingress("metrics").await;
    app.post_webhook(&webhook::incoming_message(5008, 308, "hi"))
        .await;
    app.post_webhook(&webhook::unknown_event("attacker_chosen_label_x9"))
        .await;

    let text = app.metrics().await;
    let public = app.get("/metrics").await;

    assert!(
        text.contains(r#"copydesk_webhooks_total{event="message_created",outcome="queued"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"copydesk_webhooks_total{event="unknown",outcome="ignored"}"#),
        "{text}"
    );
    assert!(!text.contains("attacker_chosen_label_x9"));
    assert_eq!(
        public.status(),
        404,
        "the public listener does not serve /metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_makes_readyz_and_webhooks_503_until_it_is_back() {
    // Arrange
    let (mut bed, app) = TestBed::with_ingress("outage").await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    let payload = webhook::incoming_message(5009, 309, "are you there?");

    // Act: Redis goes away.
    bed.redis.kill();
    let ready_while_down = app.get("/readyz").await;
    let webhook_while_down = app.post_webhook(&payload).await;

    // Assert
    assert_eq!(ready_while_down.status(), 503);
    assert_eq!(json_body(ready_while_down).await["status"], "not_ready");
    assert_eq!(
        webhook_while_down.status(),
        503,
        "never 2xx when the job is not in Redis"
    );
    assert_eq!(json_body(webhook_while_down).await["error"], "unavailable");

    // Act: Redis is back; wait until the ingress says it is ready.
    bed.redis.restart();
    wait_until_async(
        "the ingress to become ready after Redis restarted",
        Duration::from_secs(10),
        || async { app.get("/readyz").await.status() == 200 },
    )
    .await;
    let webhook_after = app.post_webhook(&payload).await;

    // Assert
    assert_eq!(webhook_after.status(), 202);
    assert_eq!(app.queued_jobs("lookup_knowledge").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_webhooks_from_16_clients_leave_exactly_one_job_per_202() {
    // Arrange
    let (_bed, app) = TestBed::with_ingress("load").await;
    let sender = &app.sender;

    // Act
    let statuses: Vec<u16> = futures::stream::iter(0..1000_i64)
        .map(|i| async move {
            let payload = webhook::incoming_message(100_000 + i, 400 + i % 50, "load");
            sender
                .post(&payload)
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
        .buffer_unordered(16)
        .collect()
        .await;

    // Assert
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert_eq!(
        accepted,
        1000,
        "statuses other than 202: {:?}",
        statuses.iter().filter(|s| **s != 202).collect::<Vec<_>>()
    );
    assert_eq!(app.queued_jobs("lookup_knowledge").await.len(), accepted);
    assert_eq!(app.queued_jobs("track_conversation").await.len(), accepted);
}

#[tokio::test]
async fn stopping_turns_readiness_off_and_drains() {
    let (_bed, app) = TestBed::with_ingress("stop").await;
    let addr = app.addr;
    assert_eq!(app.get("/readyz").await.status(), 200);

    let outcome = app.stop().await;

    assert_eq!(outcome, copydesk_ingress::ShutdownOutcome::Drained);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

/// A connection from `from` (e.g. 127.0.0.2: another client address on loopback) to `to`.
async fn connect_from(from: [u8; 4], to: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// What one stalled connection of the attack sends before going silent.
fn stalled_opening(i: usize) -> Vec<u8> {
    match i % 3 {
        // Never finishes its head.
        0 => b"POST /webhooks/chatwoot HTTP/1.1\r\nHost: ingress\r\nX-Chatwoot-".to_vec(),
        // Plausible signed headers, a full-size body declared, 64 KiB of it sent.
        1 => {
            let mut opening = format!(
                "POST /webhooks/chatwoot HTTP/1.1\r\nHost: ingress\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\
                 X-Chatwoot-Timestamp: {}\r\nX-Chatwoot-Signature: sha256={}\r\n\
                 X-Chatwoot-Delivery: stalled-{i}\r\n\r\n",
                copydesk_ingress::config::DEFAULT_MAX_BODY_BYTES,
                unix_now(),
                "00".repeat(32)
            )
            .into_bytes();
            opening.extend(std::iter::repeat_n(b' ', 64 * 1024));
            opening
        }
        // Nothing at all.
        _ => Vec::new(),
    }
}

/// Issue 12 §2: 500 connections from one address that stall (silent, half a head, or a
/// plausibly signed full-size body that stops after 64 KiB) cannot make real webhooks from
/// another address wait: all 20 get 202, each within 1 s. (Before the body budget was taken
/// per address and slice by slice, the stalled bodies held all of it and real webhooks waited
/// 5 s for a 503.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_stalled_connections_from_one_address_do_not_delay_real_webhooks() {
    use tokio::io::AsyncWriteExt;
    const STALLED: usize = 500;
    const REAL: usize = 20;
    // Arrange: the attacker's connections, each sends its opening and then nothing.
    let (_bed, app) = TestBed::with_ingress("stalled-500").await;
    let addr = app.addr;
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<bool>(STALLED);
    let hold = tokio_util::sync::CancellationToken::new();
    let attackers: Vec<_> = (0..STALLED)
        .map(|i| {
            let (opened, hold) = (opened_tx.clone(), hold.clone());
            tokio::spawn(async move {
                let stream = connect_from([127, 0, 0, 2], addr).await;
                let Ok(mut stream) = stream else {
                    let _ = opened.send(false).await;
                    return;
                };
                let sent = stream.write_all(&stalled_opening(i)).await.is_ok();
                let _ = opened.send(sent).await;
                drop(opened);
                hold.cancelled().await;
                drop(stream);
            })
        })
        .collect();
    drop(opened_tx);
    let mut opened = 0;
    for _ in 0..STALLED {
        let ok = opened_rx.recv().await.expect("every attacker reports");
        opened += usize::from(ok);
    }
    // Let the ingress read what the attackers sent.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Act: real signed webhooks from 127.0.0.1, one after another.
    let mut answers = Vec::new();
    for i in 0..REAL as i64 {
        let started = Instant::now();
        let response = app
            .post_webhook(&webhook::incoming_message(9400 + i, 940, "real"))
            .await;
        answers.push((response.status().as_u16(), started.elapsed()));
    }
    hold.cancel();
    for attacker in attackers {
        let _ = attacker.await;
    }

    // Assert
    println!("{opened} stalled connections open; real webhooks answered {answers:?}");
    assert_eq!(opened, STALLED, "every attacking connection was accepted");
    for (status, took) in &answers {
        assert_eq!(*status, 202, "a real webhook is accepted: {answers:?}");
        assert!(
            *took < Duration::from_secs(1),
            "each real webhook is answered within 1 s: {answers:?}"
        );
    }
    assert_eq!(app.queued_jobs("lookup_knowledge").await.len(), REAL);
}

/// The ops listener runs on the same accept loop as the webhook listener: a 100 KB request
/// head is refused with 431 before authentication (it used to be buffered whole).
#[tokio::test]
async fn the_ops_listener_has_the_same_header_limits() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bed = TestBed::start("ops-431");
    let app = bed
        .ingress_with(copydesk_testkit::ingress_app::with_ops)
        .await;
    let ops = app.ops_addr.expect("the ops API is configured");

    let mut stream = TcpStream::connect(ops).await.expect("ops accepts");
    let mut head = b"GET /api/queues HTTP/1.1\r\nHost: ops\r\nX-Pad: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 100 * 1024));
    head.extend_from_slice(b"\r\n\r\n");
    let _ = stream.write_all(&head).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;

    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "a 100 KB head is 431 on the ops listener: {answer:.200}"
    );
}
