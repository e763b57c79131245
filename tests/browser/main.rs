//! The operator console in a real headless browser (issue 8's "Must show"): Debian's
//! chromium driven through chromedriver against the real ingress, every worker role and the
//! fake Chatwoot. Screenshots go to `target/console-screenshots/`.

mod dashboard_app;
mod decisions;
mod embedded;
mod harness;
mod signin;
mod stats;
