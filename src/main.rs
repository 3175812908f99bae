//! The `ops-worker` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    ops_worker::cli::main()
}
