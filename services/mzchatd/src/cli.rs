//! Command line: `mzchatd [all|identity|guild|federation-sync|push-relay|media|migrate] [flags]`;
//! every flag also reads an `MZCHAT_*` environment variable.

use clap::{Parser, Subcommand};
use mzchat_guild::GuildArgs;
use mzchat_identity::IdentityArgs;
use mzchat_platform::{LimitsArgs, ServerArgs};

#[derive(Debug, Parser)]
#[command(name = "mzchatd", version, about = "The mzchat homeserver")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every service in one process on one gRPC port (the default).
    All(RunArgs),
    /// The identity service alone.
    Identity(RunArgs),
    /// The guild service alone.
    Guild(RunArgs),
    /// The federation-sync service alone.
    FederationSync(RunArgs),
    /// The push-relay service alone.
    PushRelay(RunArgs),
    /// The media service alone.
    Media(RunArgs),
    /// Apply database migrations and exit: every service's, or those named with --service.
    Migrate(MigrateArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Only this service's migrations (repeatable): with a database per service, each
    /// database gets only its own service's tables.
    #[arg(long = "service", value_enum)]
    pub services: Vec<Service>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// A service that owns a database schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    Identity,
    Guild,
    FederationSync,
    PushRelay,
    Media,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub limits: LimitsArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub guild: GuildArgs,
    /// URL of the guild service's internal API (default in the one-process mode: this process).
    #[arg(long, env = "MZCHAT_GUILD_INTERNAL_URL")]
    pub guild_internal_url: Option<String>,
    /// URL of federation-sync's internal API, where identity looks up other servers' keys
    /// (default in the one-process mode: this process).
    #[arg(long, env = "MZCHAT_FEDERATION_INTERNAL_URL")]
    pub federation_internal_url: Option<String>,
    /// URL of identity's internal API, which signs federation-sync's calls (default in the
    /// one-process mode: this process).
    #[arg(long, env = "MZCHAT_IDENTITY_INTERNAL_URL")]
    pub identity_internal_url: Option<String>,
    /// URL of the media service's internal API, where guild checks attachments and icons and
    /// identity checks avatars (default in the one-process mode: this process; without it,
    /// none of those can be set).
    #[arg(long, env = "MZCHAT_MEDIA_INTERNAL_URL")]
    pub media_internal_url: Option<String>,
    #[command(flatten)]
    pub push: mzchat_push::PushArgs,
    #[command(flatten)]
    pub media: mzchat_media::MediaArgs,
    /// Calls to other servers in flight per federation-sync process.
    #[arg(long, env = "MZCHAT_FEDERATION_CONCURRENCY", default_value_t = 64)]
    pub federation_concurrency: usize,
    /// Deadline of one call to another server, in seconds (1-20).
    #[arg(
        long,
        env = "MZCHAT_FEDERATION_CALL_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub federation_call_timeout_secs: u64,
}

const SUBCOMMANDS: [&str; 7] = [
    "all",
    "identity",
    "guild",
    "federation-sync",
    "push-relay",
    "media",
    "migrate",
];

/// Parses argv, treating a missing subcommand as `all`.
pub fn parse() -> Cli {
    let mut args: Vec<String> = std::env::args().collect();
    let first = args.get(1).map(String::as_str);
    let explicit = first.is_some_and(|a| {
        SUBCOMMANDS.contains(&a) || matches!(a, "help" | "-h" | "--help" | "-V" | "--version")
    });
    if !explicit {
        args.insert(1, "all".into());
    }
    Cli::parse_from(args)
}
