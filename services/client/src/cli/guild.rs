//! Guild and channel commands.

use clap::Subcommand;
use mzchat_client::KeyStore;
use mzchat_proto::guild::{
    CreateChannelRequest, CreateGuildRequest, CreateInviteRequest, ListChannelsRequest,
    ListGuildsRequest, guild_service_client::GuildServiceClient,
};

use super::{CliResult, call, open};

#[derive(Subcommand)]
pub enum GuildCommand {
    /// Create a guild (you become its owner).
    Create { name: String },
    /// List your guilds on --server.
    List,
    /// Print an invite link to a guild's first channel (or --channel).
    Invite {
        guild: String,
        #[arg(long)]
        channel: Option<String>,
        /// 0: unlimited.
        #[arg(long, default_value_t = 0)]
        max_uses: u32,
    },
    /// Join with an invite link (logging in to its server first if needed).
    Join { link: String },
}

#[derive(Subcommand)]
pub enum ChannelCommand {
    Create { guild: String, name: String },
    List { guild: String },
}

/// `https://host[:port]/channels/<guild>/<channel>?token=<token>` -> (origin, token).
pub async fn guild(store: KeyStore, origin: &str, command: GuildCommand) -> CliResult {
    let client = open(store)?;
    match command {
        GuildCommand::Create { name } => {
            let created = call!(
                client,
                origin,
                GuildServiceClient,
                create_guild,
                CreateGuildRequest {
                    name,
                    icon_file_id: String::new()
                }
            );
            let expires = created.access_token_expires_at.map_or(0, |t| t.seconds);
            client.adopt_access_token(origin, &created.access_token, expires)?;
            let guild = created.guild.unwrap_or_default();
            println!("created guild {} ({})", guild.name, guild.id);
        }
        GuildCommand::List => {
            for guild in call!(
                client,
                origin,
                GuildServiceClient,
                list_guilds,
                ListGuildsRequest {}
            )
            .guilds
            {
                println!(
                    "{}  {:<32} {} members",
                    guild.id, guild.name, guild.member_count
                );
            }
        }
        GuildCommand::Invite {
            guild,
            channel,
            max_uses,
        } => {
            let channel_id = match channel {
                Some(channel) => channel,
                None => call!(
                    client,
                    origin,
                    GuildServiceClient,
                    list_channels,
                    ListChannelsRequest {
                        guild_id: guild.clone()
                    }
                )
                .channels
                .first()
                .map(|c| c.id.clone())
                .ok_or("the guild has no channel to invite to")?,
            };
            let request = CreateInviteRequest {
                guild_id: guild,
                channel_id,
                max_age: None,
                max_uses,
            };
            let invite = call!(client, origin, GuildServiceClient, create_invite, request)
                .invite
                .unwrap_or_default();
            println!("{}", invite.link);
        }
        GuildCommand::Join { link } => {
            let (host, joined) = client.join_invite(&link, None).await?;
            let guild = joined.guild.unwrap_or_default();
            println!("joined {} ({}) on {host}", guild.name, guild.id);
        }
    }
    Ok(())
}

pub async fn channel(store: KeyStore, origin: &str, command: ChannelCommand) -> CliResult {
    let client = open(store)?;
    match command {
        ChannelCommand::Create { guild, name } => {
            let request = CreateChannelRequest {
                guild_id: guild,
                name,
                ..Default::default()
            };
            let channel = call!(client, origin, GuildServiceClient, create_channel, request)
                .channel
                .unwrap_or_default();
            println!("created #{} ({})", channel.name, channel.id);
        }
        ChannelCommand::List { guild } => {
            for channel in call!(
                client,
                origin,
                GuildServiceClient,
                list_channels,
                ListChannelsRequest { guild_id: guild }
            )
            .channels
            {
                println!("{}  #{}", channel.id, channel.name);
            }
        }
    }
    Ok(())
}
