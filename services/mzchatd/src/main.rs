//! `mzchatd`: the mzchat homeserver daemon. Configuration is validated before anything binds;
//! a bad configuration exits with status 64 (EX_USAGE).

mod cli;
mod process;

use std::process::ExitCode;

use cli::Command;

const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = cli::parse();
    let (mode, args, migrating) = match cli.command {
        Command::All(a) => (process::Mode::All, a, vec![]),
        Command::Identity(a) => (process::Mode::Identity, a, vec![]),
        Command::Guild(a) => (process::Mode::Guild, a, vec![]),
        Command::FederationSync(a) => (process::Mode::FederationSync, a, vec![]),
        Command::PushRelay(a) => (process::Mode::PushRelay, a, vec![]),
        Command::Media(a) => (process::Mode::Media, a, vec![]),
        Command::Migrate(m) => (process::Mode::Migrate, m.run, m.services),
    };
    let config = match process::Config::validate(mode, args) {
        Ok(config) => config.migrating_only(migrating),
        Err(err) => {
            eprintln!("mzchatd: invalid configuration: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mzchatd: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(process::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mzchatd: {err:#}");
            ExitCode::FAILURE
        }
    }
}
