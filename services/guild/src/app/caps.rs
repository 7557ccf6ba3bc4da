//! How much one guild or user may hold. Everything counted here is sent whole somewhere (a
//! guild's roles and channels in every snapshot, a user's guilds and roles in every access
//! token), so each is bounded, as other chat services bound them.

use sea_orm::ConnectionTrait;

use crate::{
    domain::{GuildError, Result},
    store,
};

/// Roles of a guild, `@everyone` included.
pub const MAX_ROLES: usize = 250;
/// Roles one member holds besides `@everyone`.
pub const MAX_MEMBER_ROLES: usize = 20;
/// Channels of a guild.
pub const MAX_CHANNELS: u64 = 500;
/// Guilds one user is a member of on this server (their access token lists them).
pub const MAX_MEMBERSHIPS: u64 = 100;

fn exhausted(message: String) -> GuildError {
    GuildError::ResourceExhausted(message)
}

pub fn check_roles(roles: usize) -> Result<()> {
    if roles >= MAX_ROLES {
        return Err(exhausted(format!("a guild has at most {MAX_ROLES} roles")));
    }
    Ok(())
}

pub fn check_member_roles(held: usize) -> Result<()> {
    if held >= MAX_MEMBER_ROLES {
        return Err(exhausted(format!(
            "a member holds at most {MAX_MEMBER_ROLES} roles"
        )));
    }
    Ok(())
}

pub async fn check_channels(conn: &impl ConnectionTrait, guild_id: &str) -> Result<()> {
    if store::guilds::channel_count(conn, guild_id).await? >= MAX_CHANNELS {
        return Err(exhausted(format!(
            "a guild has at most {MAX_CHANNELS} channels"
        )));
    }
    Ok(())
}

pub async fn check_memberships(conn: &impl ConnectionTrait, user_id: &str) -> Result<()> {
    if store::members::membership_count(conn, user_id).await? >= MAX_MEMBERSHIPS {
        return Err(exhausted(format!(
            "a user is a member of at most {MAX_MEMBERSHIPS} guilds here; leave one first"
        )));
    }
    Ok(())
}
