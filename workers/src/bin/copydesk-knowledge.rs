//! `copydesk-knowledge`: runs the knowledge worker role until SIGTERM (see `copydesk_workers::runtime`).

fn main() -> std::process::ExitCode {
    copydesk_workers::cli::role_main(copydesk_workers::runtime::Role::Knowledge)
}
