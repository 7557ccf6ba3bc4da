//! `mzchat`: command-line client.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mzchat_client::{Client, KeyStore, LocalIdentity, transport::normalize_origin};
use mzchat_proto::{
    common::ProfileHint,
    identity::{
        ListDevicesRequest, UpdateProfileRequest, identity_service_client::IdentityServiceClient,
    },
};

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
    let store = KeyStore::default_location()?;
    let origin = normalize_origin(&cli.server);
    match cli.command {
        Command::Keygen { device_id, force } => {
            if store.has_identity() && !force {
                return Err(format!(
                    "an identity already exists in {}; use --force to replace it",
                    store.dir().display()
                )
                .into());
            }
            let identity = LocalIdentity::generate(&origin, &device_id)?;
            store.save_identity(&identity)?;
            println!("user id:     {}", identity.user_id());
            println!("device:      {}", identity.device_id);
            println!("home server: {}", identity.home_server);
            println!("keys saved in {}", store.dir().display());
        }
        Command::Login {
            name,
            registration_token,
        } => {
            let client = Client::open(store)?;
            let hint = name.map(|display_name| ProfileHint {
                display_name,
                ..Default::default()
            });
            let response = client.login(&origin, hint, &registration_token).await?;
            let account = response.account.unwrap_or_default();
            println!("logged in to {origin} as {}", account.user_id);
            print_account(&account);
        }
        Command::Whoami => {
            let client = Client::open(store)?;
            print_account(&client.whoami(&origin).await?);
        }
        Command::ServerInfo => {
            let client = Client::open(store)?;
            let info = client.server_info(&origin).await?;
            println!("origin:        {}", info.origin);
            println!("version:       {}", info.software_version);
            println!("assets origin: {}", info.assets_origin);
            for key in info.server_keys.iter().chain(&info.session_keys) {
                println!("key:           {}", key.key_id);
            }
        }
        Command::Devices => {
            let client = Client::open(store)?;
            let request = client.authed(&origin, ListDevicesRequest {}).await?;
            let devices = IdentityServiceClient::new(client.channel(&origin)?)
                .list_devices(request)
                .await?
                .into_inner()
                .devices;
            for device in devices {
                let state = if device.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!("{:<24} {state}", device.device_id);
            }
        }
        Command::RevokeDevice { device_id } => {
            let client = Client::open(store)?;
            client.revoke_device(&origin, &device_id).await?;
            println!("revoked {device_id} on {origin}");
        }
        Command::Profile { name, bio } => {
            let client = Client::open(store)?;
            let request = client
                .authed(
                    &origin,
                    UpdateProfileRequest {
                        display_name: name,
                        bio,
                        ..Default::default()
                    },
                )
                .await?;
            let profile = IdentityServiceClient::new(client.channel(&origin)?)
                .update_profile(request)
                .await?
                .into_inner()
                .profile
                .unwrap_or_default();
            println!("display name: {}", profile.display_name);
            println!("bio:          {}", profile.bio);
        }
    }
    Ok(())
}

fn print_account(account: &mzchat_proto::identity::Account) {
    let profile = account.profile.clone().unwrap_or_default();
    let kind = match account.kind {
        1 => "local",
        2 => "shadow",
        _ => "unknown",
    };
    println!("user id:      {}", account.user_id);
    println!("home server:  {}", account.home_server);
    println!("account:      {kind}");
    println!("display name: {}", profile.display_name);
}
