fn main() -> std::process::ExitCode {
    roster::cli::run()
}
