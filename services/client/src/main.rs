//! `mzchat`: command-line client. Every resource is addressed on the server that hosts it
//! (`--server`); an invite link carries its own.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mzchat", version, about = "mzchat command-line client")]
struct Cli {
    /// Origin of the server to talk to, e.g. https://chat.example.org.
    #[arg(
        long,
        env = "MZCHAT_SERVER",
        global = true,
        default_value = "http://127.0.0.1:7600"
    )]
    server: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create your identity (root key and this device's key), homed on --server.
    Keygen {
        /// Name of this device (1-64 of A-Z a-z 0-9 _ -).
        #[arg(long, default_value = "cli")]
        device_id: String,
        /// Replace an existing identity (its keys are lost).
        #[arg(long)]
        force: bool,
    },
    /// Log in to --server (registering there if it is your home server).
    Login {
        /// Display name a server shows until your home server confirms it.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        registration_token: String,
    },
    /// Show your account on --server.
    Whoami,
    /// Show --server's public information.
    ServerInfo,
    /// List your devices known to --server.
    Devices,
    /// Revoke one of your devices on --server.
    RevokeDevice { device_id: String },
    /// Change your profile on --server.
    Profile {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        bio: Option<String>,
    },
    /// Guilds on --server.
    #[command(subcommand)]
    Guild(cli::guild::GuildCommand),
    /// Channels of a guild on --server.
    #[command(subcommand)]
    Channel(cli::guild::ChannelCommand),
    /// Send a message.
    Send {
        guild: String,
        channel: String,
        /// The text; words are joined with spaces.
        #[arg(required_unless_present = "attach")]
        text: Vec<String>,
        /// Files to upload and attach (repeatable).
        #[arg(long)]
        attach: Vec<std::path::PathBuf>,
    },
    /// Upload a file (parallel chunks; an interrupted upload of the same file resumes) and
    /// print its file id, type and URL.
    Upload { file: std::path::PathBuf },
    /// Show a channel's latest messages.
    History {
        guild: String,
        channel: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// React to a message.
    React {
        guild: String,
        channel: String,
        message: String,
        emoji: String,
    },
    /// Pin a message.
    Pin {
        guild: String,
        channel: String,
        message: String,
    },
    /// Print events from --server as they happen (Ctrl-C to stop).
    Tail,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mzchat: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let origin = mzchat_client::transport::normalize_origin(&cli.server);
    let store = mzchat_client::KeyStore::default_location()?;
    match cli.command {
        Command::Keygen { device_id, force } => {
            cli::account::keygen(&store, &origin, &device_id, force)
        }
        Command::Login {
            name,
            registration_token,
        } => cli::account::login(store, &origin, name, &registration_token).await,
        Command::Whoami => cli::account::whoami(store, &origin).await,
        Command::ServerInfo => cli::account::server_info(store, &origin).await,
        Command::Devices => cli::account::devices(store, &origin).await,
        Command::RevokeDevice { device_id } => {
            cli::account::revoke(store, &origin, &device_id).await
        }
        Command::Profile { name, bio } => cli::account::profile(store, &origin, name, bio).await,
        Command::Guild(command) => cli::guild::guild(store, &origin, command).await,
        Command::Channel(command) => cli::guild::channel(store, &origin, command).await,
        Command::Send {
            guild,
            channel,
            text,
            attach,
        } => cli::chat::send(store, &origin, &guild, &channel, &text.join(" "), &attach).await,
        Command::Upload { file } => cli::media::upload(store, &origin, &file).await,
        Command::History {
            guild,
            channel,
            limit,
        } => cli::chat::history(store, &origin, &guild, &channel, limit).await,
        Command::React {
            guild,
            channel,
            message,
            emoji,
        } => cli::chat::react(store, &origin, &guild, &channel, &message, &emoji).await,
        Command::Pin {
            guild,
            channel,
            message,
        } => cli::chat::pin(store, &origin, &guild, &channel, &message).await,
        Command::Tail => cli::chat::tail(store, &origin).await,
    }
}
