//! The `kandy-link` command: everything is in the library.

fn main() -> std::process::ExitCode {
    kandy_link::cli::main()
}
