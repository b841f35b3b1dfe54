//! The `dirgate` binary: see `dirgate --help`.

fn main() -> std::process::ExitCode {
    dirgate::cli::main()
}
