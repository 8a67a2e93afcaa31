//! The `shiren` command line: serve, migrate, manage merchant apps, scenes, identities and billing, the face
//! engine and its models. Parsing and dispatch are `cli`'s.
mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    cli::run(cli::Cli::parse())
}
