//! `copydesk`: the ops CLI (run roles, approvals, dead letters, queues, learning export).

fn main() -> std::process::ExitCode {
    copydesk_workers::cli::main()
}
