//! Guild and channel commands.

use clap::Subcommand;
use mzchat_client::{KeyStore, transport::normalize_origin};
use mzchat_proto::guild::{
    CreateChannelRequest, CreateGuildRequest, CreateInviteRequest, JoinInviteRequest,
    ListChannelsRequest, ListGuildsRequest, guild_service_client::GuildServiceClient,
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
fn parse_link(link: &str) -> Result<(String, String), String> {
    let error = || {
        format!("{link} is not an invite link (https://host/channels/<guild>/<channel>?token=...)")
    };
    let (before, token) = link.split_once("?token=").ok_or_else(error)?;
    let scheme_end = before.find("://").ok_or_else(error)? + 3;
    let path_start = before[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .ok_or_else(error)?;
    if !before[path_start..].starts_with("/channels/") {
        return Err(error());
    }
    Ok((normalize_origin(&before[..path_start]), token.to_owned()))
}

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
            let (host, token) = parse_link(&link)?;
            if client.session(&host).is_none() {
                client.login(&host, None, "").await?;
            }
            let request = JoinInviteRequest { token, login: None };
            let joined = call!(client, &host, GuildServiceClient, join_invite, request);
            let expires = joined.access_token_expires_at.map_or(0, |t| t.seconds);
            client.adopt_access_token(&host, &joined.access_token, expires)?;
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

#[cfg(test)]
mod tests {
    use super::parse_link;

    #[test]
    fn invite_links_give_their_server_and_token() {
        let (origin, token) =
            parse_link("https://Chat.Example.org:8443/channels/g/c?token=AbC123xyz0")
                .expect("link");
        assert_eq!(origin, "https://chat.example.org:8443");
        assert_eq!(token, "AbC123xyz0");
        assert!(parse_link("https://chat.example.org/other?token=x").is_err());
        assert!(parse_link("chat.example.org/channels/g/c").is_err());
    }
}
