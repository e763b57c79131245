//! Several Chatwoot accounts in one installation (issue 12 §1): each account's webhooks are
//! accepted only with that account's secret, and every Chatwoot call for an account's jobs is
//! made in that account with that account's token. Two accounts are served by one fake
//! Chatwoot (same conversation ids in both, different tokens; a token used on the other
//! account's paths is refused 401, as Chatwoot does).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use copydesk::accounts::Accounts;
use copydesk::approvals::{ApprovalItem, ApprovalStatus, ApprovalStore, Decision};
use copydesk::chatwoot::{ChatwootClient, ChatwootConfig};
use copydesk::jobs::{ContactRef, JobMeta, LookupKnowledge};
use copydesk::operator::Operator;
use copydesk::queue::dead_letters::{DeadLetter, DeadLetterFilter, DeadLetters};
use copydesk::queue::QueueClient;
use copydesk_testkit::fake_chatwoot::{FakeChatwoot, RecordedRequest, Seed};
use copydesk_testkit::ingress_app::{spawn_ingress_with, test_config, unique_prefix, TestIngress};
use copydesk_testkit::pipeline::{demo_routing_file, sample_knowledge_dir};
use copydesk_testkit::webhook::{incoming_message, WebhookSender};
use copydesk_testkit::RedisServer;
use copydesk_workers::runtime::{Fleet, Role};
use tokio_util::sync::{CancellationToken, DropGuard};

const WAIT: Duration = Duration::from_secs(60);
const SECRET_ONE: &str = "webhook-secret-of-account-one";
const SECRET_TWO: &str = "webhook-secret-of-account-two";
const TOKEN_TWO: &str = "api-token-of-account-two";

/// A throwaway directory for the accounts file, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("copydesk-accounts-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two accounts (1: the demo seed; 2: the demo seed again, with its own token), their
/// accounts file, the ingress bound to it and, when `workers`, the fleet built from it.
struct TwoAccounts {
    _dir: TempDir,
    redis: RedisServer,
    one: FakeChatwoot,
    two: FakeChatwoot,
    ingress: TestIngress,
    queue: Option<QueueClient>,
    _stop: Option<DropGuard>,
}

impl TwoAccounts {
    async fn start(workers: bool) -> Self {
        let redis = RedisServer::start();
        let one = FakeChatwoot::start(Seed::demo()).await;
        let mut seed = Seed::demo();
        seed.account_id = 2;
        seed.token = TOKEN_TWO.into();
        let two = one.add_account(seed);
        let dir = TempDir::new();
        let path = dir.0.join("accounts.toml");
        // Account 1's values are literals, account 2's come from variables (as from a
        // Kubernetes secret).
        std::fs::write(
            &path,
            format!(
                "[[account]]\nid = 1\napi_token = \"{}\"\nwebhook_secrets = [\"{SECRET_ONE}\"]\n\n\
                 [[account]]\nid = 2\napi_token = {{ env = \"TOKEN_TWO\" }}\n\
                 webhook_secrets = [{{ env = \"SECRET_TWO\" }}]\n",
                one.token()
            ),
        )
        .expect("the accounts file is written");
        let prefix = unique_prefix("accounts");
        let env = HashMap::from([
            ("REDIS_URL".to_owned(), redis.url()),
            ("COPYDESK_KEY_PREFIX".to_owned(), prefix.clone()),
            ("CHATWOOT_BASE_URL".to_owned(), one.base_url()),
            (
                "COPYDESK_ACCOUNTS_FILE".to_owned(),
                path.display().to_string(),
            ),
            ("TOKEN_TWO".to_owned(), TOKEN_TWO.to_owned()),
            ("SECRET_TWO".to_owned(), SECRET_TWO.to_owned()),
            (
                "COPYDESK_KNOWLEDGE_DIR".to_owned(),
                sample_knowledge_dir().display().to_string(),
            ),
            (
                "COPYDESK_ROUTING_FILE".to_owned(),
                demo_routing_file().display().to_string(),
            ),
            ("COPYDESK_BACKOFF_BASE_MS".to_owned(), "50".to_owned()),
            ("COPYDESK_BACKOFF_MAX_MS".to_owned(), "500".to_owned()),
        ]);
        let mut config = test_config(&redis.url(), &prefix);
        config.webhook_secrets = Vec::new();
        config.accounts = Accounts::from_env(&env).expect("a valid accounts file");
        let ingress = spawn_ingress_with(config).await;
        let (queue, stop) = if workers {
            // No dead-letter re-drive: a dead letter must stay where the test looks for it.
            let roles: Vec<Role> = copydesk_testkit::pipeline::webhook_roles()
                .into_iter()
                .filter(|r| *r != Role::DEADLETTER)
                .collect();
            let fleet = Fleet::build(&roles, &env).await.expect("the fleet builds");
            let queue = fleet.queue().clone();
            let shutdown = CancellationToken::new();
            tokio::spawn(fleet.run(shutdown.clone()));
            (Some(queue), Some(shutdown.drop_guard()))
        } else {
            (None, None)
        };
        Self {
            _dir: dir,
            redis,
            one,
            two,
            ingress,
            queue,
            _stop: stop,
        }
    }

    fn sender(&self, secret: &str) -> WebhookSender {
        WebhookSender::new(
            self.ingress.http.clone(),
            self.ingress.url("/webhooks/chatwoot"),
            secret,
        )
    }

    fn queue(&self) -> &QueueClient {
        self.queue.as_ref().expect("started with workers")
    }

    /// The customer writes in `account`'s conversation; its webhook is signed with `secret`.
    async fn customer_writes(
        &self,
        account: &FakeChatwoot,
        conversation: i64,
        text: &str,
        secret: &str,
    ) -> (i64, u16) {
        let message = account
            .add_incoming_message(conversation, text)
            .expect("the conversation exists");
        let payload = account
            .message_created_webhook(conversation, message.id)
            .expect("a stored customer message");
        let status = self
            .sender(secret)
            .post(&payload)
            .await
            .expect("the ingress answers")
            .status()
            .as_u16();
        (message.id, status)
    }

    async fn wait_for(
        &self,
        id: &str,
        done: impl Fn(&ApprovalItem) -> bool,
    ) -> Option<ApprovalItem> {
        let approvals = ApprovalStore::for_queue(self.queue());
        let until = Instant::now() + WAIT;
        loop {
            if let Ok(Some(item)) = approvals.get(id).await {
                if done(&item) {
                    return Some(item);
                }
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Every job queue's entries.
async fn queued_anything(ingress: &TestIngress) -> usize {
    let mut total = 0;
    for queue in copydesk::jobs::ALL_QUEUES {
        total += ingress.queued_jobs(queue).await.len();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_signed_with_another_accounts_secret_is_refused_and_nothing_is_enqueued() {
    let t = TwoAccounts::start(false).await;
    let mut payload = incoming_message(9_001, 101, "Do you ship AN-6 fittings?");
    payload["account"]["id"] = serde_json::json!(2);
    let refused = t
        .sender(SECRET_ONE)
        .post(&payload)
        .await
        .expect("the ingress answers");
    assert_eq!(
        refused.status().as_u16(),
        401,
        "account 1's secret must not vouch for account 2's payload"
    );
    assert_eq!(queued_anything(&t.ingress).await, 0, "nothing enqueued");
    // An account no secret is bound to is refused whatever the secret.
    payload["account"]["id"] = serde_json::json!(3);
    for secret in [SECRET_ONE, SECRET_TWO] {
        let status = t.sender(secret).post(&payload).await.expect("answers");
        assert_eq!(status.status().as_u16(), 401, "unconfigured account 3");
    }
    assert_eq!(queued_anything(&t.ingress).await, 0, "nothing enqueued");
    // The right secret is accepted (so the refusals left no dedupe key behind).
    payload["account"]["id"] = serde_json::json!(2);
    let accepted = t.sender(SECRET_TWO).post(&payload).await.expect("answers");
    assert_eq!(accepted.status().as_u16(), 202);
    let jobs = t.ingress.queued_jobs("lookup_knowledge").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["account_id"], 2);
    // And account 1's own secret still works for account 1.
    payload["account"]["id"] = serde_json::json!(1);
    let accepted = t.sender(SECRET_ONE).post(&payload).await.expect("answers");
    assert_eq!(accepted.status().as_u16(), 202);
    drop(t.redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_accounts_messages_get_notes_and_replies_in_its_own_conversations_with_its_own_token()
{
    let t = TwoAccounts::start(true).await;
    let (m1, s1) = t
        .customer_writes(&t.one, 101, "What size is an AN-6 fitting?", SECRET_ONE)
        .await;
    let (m2, s2) = t
        .customer_writes(&t.two, 101, "What size is an AN-8 fitting?", SECRET_TWO)
        .await;
    assert_eq!((s1, s2), (202, 202));
    let id1 = ApprovalStore::approval_id(1, 101, m1);
    let id2 = ApprovalStore::approval_id(2, 101, m2);
    for id in [&id1, &id2] {
        t.wait_for(id, |i| i.note_id.is_some())
            .await
            .unwrap_or_else(|| panic!("{id} drafted with a note"));
    }
    // Each account's conversation 101 holds exactly its own draft's note.
    let notes1 = t.one.private_notes(101);
    let notes2 = t.two.private_notes(101);
    assert_eq!(notes1.len(), 1, "{notes1:?}");
    assert_eq!(notes2.len(), 1, "{notes2:?}");
    let text =
        |m: &copydesk_testkit::fake_chatwoot::FakeMessage| m.content.clone().unwrap_or_default();
    assert!(text(&notes1[0]).contains(&id1) && !text(&notes1[0]).contains(&id2));
    assert!(text(&notes2[0]).contains(&id2) && !text(&notes2[0]).contains(&id1));

    let operator = Operator::new(t.queue().clone());
    for id in [&id1, &id2] {
        operator
            .decide(
                id,
                Decision::Approve {
                    operator: "ana".into(),
                },
            )
            .await
            .expect("approved");
    }
    for id in [&id1, &id2] {
        let item = t
            .wait_for(id, |i| {
                matches!(i.status, ApprovalStatus::Sent | ApprovalStatus::HeldBack)
            })
            .await
            .expect("the reply settles");
        assert_eq!(item.status, ApprovalStatus::Sent, "{id}");
    }
    let replies1 = t.one.public_replies(101);
    let replies2 = t.two.public_replies(101);
    assert_eq!(replies1.len(), 1);
    assert_eq!(replies2.len(), 1);
    assert!(replies1[0]
        .source_id
        .as_deref()
        .is_some_and(|s| s.ends_with(&id1)));
    assert!(replies2[0]
        .source_id
        .as_deref()
        .is_some_and(|s| s.ends_with(&id2)));

    // Every call each account saw carried that account's own token, and none was refused.
    let check = |requests: Vec<RecordedRequest>, account: i64, token: &str| {
        assert!(!requests.is_empty(), "account {account} was called");
        for r in &requests {
            assert_eq!(r.api_access_token.as_deref(), Some(token), "{r:?}");
            assert!(
                r.account_id.is_none() || r.account_id == Some(account),
                "{r:?}"
            );
            assert_ne!(r.status, Some(401), "{r:?}");
        }
    };
    check(t.one.requests(), 1, t.one.token());
    check(t.two.requests(), 2, TOKEN_TWO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_of_an_unconfigured_account_is_dead_lettered_naming_it_and_calls_nobody() {
    let t = TwoAccounts::start(true).await;
    let job = LookupKnowledge {
        meta: JobMeta::new(
            "accounts-test".parse().expect("a valid delivery id"),
            copydesk::approvals::now_ms(),
        ),
        account_id: copydesk::domain::AccountId::new(3),
        conversation_id: copydesk::domain::ConversationId::new(101),
        message_id: copydesk::domain::MessageId::new(77_001),
        inbox_id: Some(1),
        content: "What size is an AN-6 fitting?".into(),
        contact: ContactRef::default(),
        conversation_attributes: serde_json::Map::new(),
        created_at: 0,
    };
    t.queue().enqueue(&job).await.expect("enqueued");
    let dead_letters = DeadLetters::new(t.queue());
    let until = Instant::now() + WAIT;
    let letter: DeadLetter = loop {
        let found = dead_letters
            .list(&DeadLetterFilter::default())
            .await
            .expect("dead letters readable");
        if let Some(letter) = found.into_iter().next() {
            break letter;
        }
        assert!(Instant::now() < until, "the job is dead-lettered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(letter.queue, "lookup_knowledge");
    assert!(letter.permanent, "{letter:?}");
    assert_eq!(letter.attempts, 1, "not retried: {letter:?}");
    assert!(letter.error.contains("account 3"), "{}", letter.error);
    // Nothing else runs here: any account call would have been made for account 3's job.
    let account_calls =
        |requests: Vec<RecordedRequest>| requests.iter().filter(|r| r.account_id.is_some()).count();
    assert_eq!(
        account_calls(t.one.requests()),
        0,
        "no call made for it in account 1"
    );
    assert_eq!(
        account_calls(t.two.requests()),
        0,
        "no call made for it in account 2"
    );
    assert!(t.one.private_notes(101).is_empty() && t.two.private_notes(101).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fake_refuses_one_accounts_token_on_another_account() {
    let t = TwoAccounts::start(false).await;
    let wrong = ChatwootConfig::new(&t.one.base_url(), t.one.token().to_owned().into(), 2)
        .expect("loopback URL");
    let error = ChatwootClient::new(&wrong)
        .expect("client")
        .get_conversation(101)
        .await
        .expect_err("account 1's token on account 2");
    assert_eq!(error.status(), Some(401), "{error}");
    let right = ChatwootConfig::new(&t.one.base_url(), TOKEN_TWO.to_owned().into(), 2)
        .expect("loopback URL");
    let conversation = ChatwootClient::new(&right)
        .expect("client")
        .get_conversation(101)
        .await
        .expect("account 2's own token");
    assert_eq!(conversation.id, 101);
    let recorded = t.two.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].status, Some(401));
    assert_eq!(recorded[0].account_id, Some(2));
}
