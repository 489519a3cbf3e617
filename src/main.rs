fn main() {
    std::process::exit(fabrik::run(std::env::args_os()));
}
