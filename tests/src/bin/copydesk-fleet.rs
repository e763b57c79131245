//! `copydesk-fleet`: the `copydesk` CLI built inside the test package, so end-to-end tests can
//! run worker roles as real processes (and SIGKILL them) via `CARGO_BIN_EXE_copydesk-fleet`.

fn main() -> std::process::ExitCode {
    copydesk_workers::cli::main()
}
