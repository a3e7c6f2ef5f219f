//! staunch-lab: see what staunch does to an outage. Run `staunch-lab --help`.

fn main() -> std::process::ExitCode {
    staunch_lab::cli::main()
}
