//! The browser tests' kit: Debian's chromium driven through chromedriver (WebDriver), the
//! whole fleet with the console ([`Pipeline`] + fake Chatwoot), tiny "other site" pages, and
//! screenshots under `target/console-screenshots/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use copydesk::approvals::ApprovalStatus;
use copydesk_testkit::fake_chatwoot::agent_token;
use copydesk_testkit::pipeline::{Pipeline, PipelineOptions};
use copydesk_testkit::process::TestProcess;
use copydesk_testkit::redis_server::free_port;
use copydesk_testkit::wait::wait_until;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One browser test at a time: chromium is heavy and the machine is small.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a page may take to show what a test waits for (generous: the machine is shared).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Maria Lopez, an agent of the demo account.
pub(crate) const MARIA: i64 = 2;
/// Dave Kim, another agent.
pub(crate) const DAVE: i64 = 3;
/// Tom Becker, an administrator.
pub(crate) const TOM: i64 = 5;

/// chromedriver + a headless chromium session; both end on drop.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: TestProcess,
}

impl Browser {
    /// Starts chromedriver and a headless chromium window of `width` × `height`.
    pub(crate) async fn start(width: u32, height: u32) -> Self {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromedriver is installed (run scripts/ensure-browser.sh)");
        let port = free_port();
        let driver = TestProcess::spawn(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            "chromedriver",
        );
        wait_until(
            format_args!("chromedriver to listen on {port}"),
            PATIENCE,
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        )
        .await;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions",
                         format!("--window-size={width},{height}")],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a chromium session starts");
        Self { client, driver }
    }

    /// Waits for an element matching `css`.
    pub(crate) async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// The text of the first element matching `css`, once there is one.
    pub(crate) async fn text_of(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("element text")
    }

    /// Waits until `done` holds for the page source.
    pub(crate) async fn wait_source(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + PATIENCE;
        loop {
            let source = self.client.source().await.expect("page source");
            if done(&source) {
                return source;
            }
            assert!(
                Instant::now() < until,
                "timed out waiting for {what}; page:\n{source}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes a PNG of the window to `target/console-screenshots/{name}.png`.
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    /// Ends the session.
    pub(crate) async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.driver.kill();
    }
}

/// The fleet with the console, the seed's three drafts pending.
pub(crate) struct Site {
    pub(crate) pipeline: Pipeline,
    /// `http://localhost:{ops port}` (a host name, so `Secure` cookies work over plain http).
    pub(crate) base: String,
    pub(crate) ops: SocketAddr,
}

impl Site {
    /// Starts everything; `frame_ancestors` may frame the console.
    pub(crate) async fn start(frame_ancestors: Vec<String>) -> Self {
        let pipeline = PipelineOptions {
            console_frame_ancestors: Some(frame_ancestors),
            ..PipelineOptions::default()
        }
        .start()
        .await;
        let ops = pipeline.ingress.ops_addr.expect("the ops listener");
        let site = Self {
            base: format!("http://localhost:{}", ops.port()),
            ops,
            pipeline,
        };
        site.deliver_seed().await;
        site
    }

    /// Sends the seed's customer messages and waits for their three pending drafts.
    async fn deliver_seed(&self) {
        for conversation in [101, 102, 103] {
            for message in self.pipeline.chatwoot.incoming_messages(conversation) {
                let status = self
                    .pipeline
                    .deliver_message_webhook(conversation, message.id)
                    .await;
                assert_eq!(status, 202, "webhook accepted");
            }
        }
        let until = Instant::now() + PATIENCE;
        while self.pending_ids().await.len() < 3 {
            assert!(
                Instant::now() < until,
                "the seed's three drafts did not appear"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `{base}{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Pending approval ids, urgent first then oldest (the store's order).
    pub(crate) async fn pending_ids(&self) -> Vec<String> {
        self.pipeline
            .approvals
            .list(Some(ApprovalStatus::Pending), 0, 50)
            .await
            .expect("pending list")
            .into_iter()
            .map(|i| i.doc.id)
            .collect()
    }

    /// The pending draft of a conversation.
    pub(crate) async fn draft_of(&self, conversation: i64) -> String {
        let account = self.pipeline.chatwoot.account_id();
        self.pipeline
            .approvals
            .conversation_draft(account, conversation)
            .await
            .expect("redis")
            .expect("the conversation has a draft")
    }

    /// Waits until conversation `c` has `n` public replies; returns their texts.
    pub(crate) async fn wait_replies(&self, conversation: i64, n: usize) -> Vec<String> {
        let until = Instant::now() + PATIENCE;
        loop {
            let replies: Vec<String> = self
                .pipeline
                .chatwoot
                .public_replies(conversation)
                .into_iter()
                .filter_map(|m| m.content)
                .collect();
            if replies.len() >= n {
                return replies;
            }
            assert!(
                Instant::now() < until,
                "conversation {conversation} got {} replies",
                replies.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs `browser` in with agent `agent`'s Chatwoot token from `path` (which redirects
    /// to the sign-in page), and waits until it is back on `path`.
    pub(crate) async fn sign_in(&self, browser: &Browser, path: &str, agent: i64) {
        browser
            .client
            .goto(&self.url(path))
            .await
            .expect("navigates");
        submit_token(browser, &agent_token(agent)).await;
        browser
            .wait_source("the page after sign-in", |s| !s.contains("id=\"token\""))
            .await;
    }

    /// A session cookie for `token`, signed in over plain HTTP (as a browser would).
    pub(crate) async fn session_for(&self, token: &str) -> String {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let response = http
            .post(self.url("/ui/signin"))
            .header("sec-fetch-site", "same-origin")
            .form(&[("token", token), ("next", "/ui/")])
            .send()
            .await
            .expect("sign-in answers");
        assert_eq!(response.status(), 303, "signed in");
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie")
            .to_owned();
        cookie.split(';').next().expect("name=value").to_owned()
    }
}

/// Types `token` into the sign-in form and submits it.
pub(crate) async fn submit_token(browser: &Browser, token: &str) {
    let field = browser.wait_for("#token").await;
    field.send_keys(token).await.expect("types the token");
    browser
        .wait_for("#signin")
        .await
        .click()
        .await
        .expect("submits");
}

/// Serves `pages` (path → HTML) on `127.0.0.1:0`, standing in for another site; returns
/// its origin. The server lives as long as the test's runtime.
pub(crate) async fn other_site(pages: Vec<(&'static str, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    serve_pages(listener, pages);
    format!("http://{addr}")
}

/// Answers every request on `listener` with the page at its path.
pub(crate) fn serve_pages(listener: TcpListener, pages: Vec<(&'static str, String)>) {
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let pages = pages.clone();
            tokio::spawn(async move {
                let mut buf = vec![0_u8; 8192];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let body = pages
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map_or_else(|| "not found".to_owned(), |(_, html)| html.clone());
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
}
