//! `mzchat-operator`: `crd` prints the Homeserver CustomResourceDefinition.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "mzchat-operator", version, about = "The mzchat operator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the Homeserver CustomResourceDefinition (YAML) on standard output.
    Crd,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => match mzchat_operator::crd::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("mzchat-operator: cannot serialize the CRD: {err}");
                ExitCode::FAILURE
            }
        },
    }
}
