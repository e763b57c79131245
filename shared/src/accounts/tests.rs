//! Unit tests of the accounts file and the one-account shorthand.

use super::*;

use crate::config::env_of as env;

const TOKEN_A: &str = "legacy-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOKEN_B: &str = "legacy-token-bbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn write_file(text: &str) -> (tempdir::Dir, String) {
    let dir = tempdir::Dir::new();
    let path = dir.path.join("accounts.toml");
    std::fs::write(&path, text).expect("write");
    let path = path.display().to_string();
    (dir, path)
}

/// A throwaway directory, removed on drop.
mod tempdir {
    pub(super) struct Dir {
        pub(super) path: std::path::PathBuf,
    }
    impl Dir {
        pub(super) fn new() -> Self {
            let path =
                std::env::temp_dir().join(format!("copydesk-accounts-{}", ulid::Ulid::new()));
            std::fs::create_dir_all(&path).expect("mkdir");
            Self { path }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[test]
fn the_file_binds_tokens_and_secrets_from_literals_variables_and_files() {
    let (dir, _) = write_file("");
    let secret_file = dir.path.join("secret");
    std::fs::write(&secret_file, "from-a-file\n").expect("write");
    let text = format!(
        r#"
[[account]]
id = 1
api_token = "token-one"
webhook_secrets = ["secret-one", {{ file = "{}" }}]
legacy_token = "{TOKEN_A}"

[[account]]
id = 2
api_token = {{ env = "TOKEN_TWO" }}
webhook_secrets = [{{ env = "SECRET_TWO" }}]
"#,
        secret_file.display()
    );
    let (_dir, path) = write_file(&text);
    let accounts = Accounts::from_env(&env(&[
        (ACCOUNTS_FILE_VAR, &path),
        ("TOKEN_TWO", "token-two"),
        ("SECRET_TWO", "secret-two"),
    ]))
    .expect("valid file");
    assert_eq!(accounts.ids(), vec![1, 2]);
    let one = accounts.get(1).expect("account 1");
    assert_eq!(
        one.api_token.as_ref().map(|t| t.expose_secret()),
        Some("token-one")
    );
    let secrets: Vec<&str> = accounts
        .webhook_secrets_for(Some(1))
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    assert_eq!(secrets, vec!["secret-one", "from-a-file"]);
    let secrets: Vec<&str> = accounts
        .webhook_secrets_for(Some(2))
        .iter()
        .map(|s| s.expose_secret())
        .collect();
    assert_eq!(secrets, vec!["secret-two"]);
    assert!(accounts.webhook_secrets_for(Some(3)).is_empty());
    assert!(accounts.webhook_secrets_for(None).is_empty());
    assert_eq!(accounts.account_for_legacy_token(TOKEN_A), Some(1));
    assert_eq!(accounts.account_for_legacy_token(TOKEN_B), None);
    let printed = format!("{accounts:?}");
    for secret in [
        "token-one",
        "token-two",
        "secret-one",
        "from-a-file",
        TOKEN_A,
    ] {
        assert!(!printed.contains(secret), "{printed}");
    }
}

#[test]
fn file_errors_name_the_file_and_account_but_never_a_secret() {
    let (_dir, path) = write_file("[[account]]\nid = 4\napi_token = { env = \"MISSING_VAR\" }\n");
    let err = Accounts::from_env(&env(&[(ACCOUNTS_FILE_VAR, &path)])).expect_err("unset");
    let text = err.to_string();
    assert!(
        text.contains(ACCOUNTS_FILE_VAR) && text.contains("account 4"),
        "{text}"
    );
    assert!(text.contains("MISSING_VAR"), "{text}");
    let (_dir, path) =
        write_file("[[account]]\nid = 4\nwebhook_secrets = \"super-secret-value\"\n");
    let err = Accounts::from_env(&env(&[(ACCOUNTS_FILE_VAR, &path)])).expect_err("not a list");
    assert!(!err.to_string().contains("super-secret"), "{err}");
    let (_dir, path) = write_file("[[account]]\nid = 4\n[[account]]\nid = 4\n");
    let err = Accounts::from_env(&env(&[(ACCOUNTS_FILE_VAR, &path)])).expect_err("twice");
    assert!(err.to_string().contains("unique"), "{err}");
    let (_dir, path) = write_file("[[account]]\nid = 4\nlegacy_token = \"short\"\n");
    let err = Accounts::from_env(&env(&[(ACCOUNTS_FILE_VAR, &path)])).expect_err("short");
    assert!(err.to_string().contains("at least 32"), "{err}");
    assert!(!err.to_string().contains("short\""), "{err}");
    let (_dir, path) = write_file("[[account]]\nid = 4\n");
    let err = Accounts::from_env(&env(&[
        (ACCOUNTS_FILE_VAR, &path),
        ("COPYDESK_WEBHOOK_SECRETS", "x"),
    ]))
    .expect_err("both");
    assert!(
        err.to_string().contains("COPYDESK_WEBHOOK_SECRETS"),
        "{err}"
    );
}

#[test]
fn the_shorthand_binds_secrets_to_chatwoot_account_id_when_set() {
    let bound = Accounts::from_env(&env(&[
        ("COPYDESK_WEBHOOK_SECRETS", "a,b"),
        ("CHATWOOT_ACCOUNT_ID", "7"),
        ("CHATWOOT_API_TOKEN", "t"),
    ]))
    .expect("valid");
    assert_eq!(bound.ids(), vec![7]);
    assert_eq!(bound.webhook_secrets_for(Some(7)).len(), 2);
    assert!(bound.webhook_secrets_for(Some(8)).is_empty());
    let unbound = Accounts::from_env(&env(&[("COPYDESK_WEBHOOK_SECRETS", "a,b")])).expect("valid");
    assert!(unbound.ids().is_empty());
    assert_eq!(unbound.webhook_secrets_for(Some(8)).len(), 2);
    assert_eq!(unbound.webhook_secrets_for(None).len(), 2);
    assert!(Accounts::from_env(&env(&[])).expect("valid").is_empty());
    assert!(Accounts::from_env(&env(&[]))
        .expect("valid")
        .require_webhook_auth(false)
        .is_err());
}

#[test]
fn quoted_text_is_redacted() {
    assert_eq!(
        redact_quoted("invalid type: string \"s3cret\", expected a sequence"),
        "invalid type: string \"…\", expected a sequence"
    );
}
