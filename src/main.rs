/// mimalloc rather than the system allocator: a large stack is millions of small maps and
/// strings built and freed in a few hundred milliseconds, where glibc's allocator spent a fifth
/// of the run (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(fabrik::run(std::env::args_os()));
}
