//! The `dirgate` binary: see `dirgate --help`.

/// mimalloc: a GraphQL response allocates many small, short-lived objects per field; glibc's
/// malloc spent about a fifth of the read path's CPU on them (perf, `read_bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dirgate::memory::tune_allocator();
    dirgate::cli::main()
}
