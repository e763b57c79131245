//! A `copydesk-<role>` binary: runs the role its file name says until SIGTERM (see
//! `copydesk_workers::runtime`). Every role binary is this same file; a new role is a copy.

fn main() -> std::process::ExitCode {
    copydesk_workers::cli::binary_main(env!("CARGO_BIN_NAME"))
}
