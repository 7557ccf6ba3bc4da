use std::time::Duration;

use mzchat_proto::guild::{MemberJoined, event::Payload};
use sea_orm::TransactionTrait;

use super::{Caller, FreshToken, GuildApp, caps, now, page_size};
use crate::{
    convert,
    domain::{
        GuildError, Result, denied, invalid,
        invite::{self, new_token},
        model::{Channel, Guild, Invite, Member},
        not_found,
        permissions::{CREATE_INVITE, MANAGE_GUILD},
        validate,
    },
    store,
};

/// What PreviewInvite shows to anyone holding the token.
pub struct Preview {
    pub guild: Guild,
    pub channel: Option<Channel>,
    pub expires_at: i64,
}

fn gone() -> GuildError {
    not_found("this invite does not exist, has expired or has been used up")
}

impl GuildApp {
    pub async fn create_invite(
        &self,
        caller: &Caller,
        guild_id: &str,
        channel_id: &str,
        max_age: Option<Duration>,
        max_uses: u32,
    ) -> Result<Invite> {
        let channel_id = validate::id("channel_id", channel_id)?;
        let max_age = invite::max_age(max_age)?;
        let access = self.access_fast(caller, guild_id).await?;
        access.require(CREATE_INVITE)?;
        store::guilds::find_channel(&self.db, &access.guild.id, &channel_id)
            .await?
            .ok_or_else(|| not_found("no such channel in this guild"))?;
        let at = now();
        let invite = Invite {
            token: new_token()?,
            guild_id: access.guild.id.clone(),
            channel_id,
            creator_id: caller.user_id().to_owned(),
            uses: 0,
            max_uses,
            expires_at: at + max_age.as_millis() as i64,
            revoked: false,
        };
        store::invites::insert(&self.db, &invite, at).await?;
        Ok(invite)
    }

    pub async fn list_invites(
        &self,
        caller: &Caller,
        guild_id: &str,
        size: i32,
        token: &str,
    ) -> Result<(Vec<Invite>, String)> {
        let limit = page_size(size)?;
        let access = self.access_fast(caller, guild_id).await?;
        access.require(MANAGE_GUILD)?;
        // Tokens are invite tokens this server handed out.
        if token.len() > 64 {
            return Err(invalid("page_token is not one this server gave"));
        }
        let after = (!token.is_empty()).then_some(token);
        let invites = store::invites::page(&self.db, &access.guild.id, after, limit, now()).await?;
        let next = if invites.len() as u64 == limit {
            invites.last().map(|i| i.token.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((invites, next))
    }

    /// Revokes an invite: its creator or anyone with MANAGE_GUILD may.
    pub async fn revoke_invite(&self, caller: &Caller, guild_id: &str, token: &str) -> Result<()> {
        invite::validate_token(token)?;
        let access = self.access_fast(caller, guild_id).await?;
        let invite = store::invites::find(&self.db, token)
            .await?
            .filter(|i| i.guild_id == access.guild.id)
            .ok_or_else(|| not_found("no such invite in this guild"))?;
        if invite.creator_id != caller.user_id() {
            access.require(MANAGE_GUILD)?;
        }
        store::invites::revoke(&self.db, token, now()).await?;
        Ok(())
    }

    /// Unauthenticated: what a link leads to.
    pub async fn preview_invite(&self, token: &str) -> Result<Preview> {
        invite::validate_token(token)?;
        let invite = self.live_invite(&self.db, token).await?;
        let guild = store::guilds::find(&self.db, &invite.guild_id)
            .await?
            .ok_or_else(gone)?;
        let channel = store::guilds::find_channel(&self.db, &guild.id, &invite.channel_id).await?;
        Ok(Preview {
            guild,
            channel,
            expires_at: invite.expires_at,
        })
    }

    async fn live_invite(
        &self,
        conn: &impl sea_orm::ConnectionTrait,
        token: &str,
    ) -> Result<Invite> {
        let invite = store::invites::find(conn, token).await?.ok_or_else(gone)?;
        let used_up = invite.max_uses != 0 && invite.uses >= invite.max_uses;
        if invite.revoked || invite.expires_at <= now() || used_up {
            return Err(gone());
        }
        Ok(invite)
    }

    /// Joins the caller to the invite's guild with `@everyone`. Members joining again succeed
    /// without using the invite; banned users are refused.
    pub async fn join_invite(&self, caller: &Caller, token: &str) -> Result<(Guild, FreshToken)> {
        invite::validate_token(token)?;
        let user_id = caller.user_id();
        let stored = store::invites::find(&self.db, token)
            .await?
            .ok_or_else(gone)?;
        let txn = self.db.begin().await?;
        // The guild row lock orders this join against a concurrent ban of the same user.
        let guild = store::guilds::find_for_update(&txn, &stored.guild_id)
            .await?
            .ok_or_else(gone)?;
        if store::members::find_ban(&txn, &guild.id, user_id)
            .await?
            .is_some()
        {
            return Err(denied("you are banned from this guild"));
        }
        // Already a member: success whatever the invite's state, using nothing.
        let member = store::members::find(&txn, &guild.id, user_id)
            .await?
            .is_some();
        if !member {
            self.live_invite(&txn, token).await?;
            caps::check_memberships(&txn, user_id).await?;
        }
        let at = now();
        // Membership first: of two concurrent joins by one user only one inserts (and uses the
        // invite); a failed use rolls the insert back with the transaction.
        if !member
            && store::members::insert(&txn, &guild.id, user_id, &caller.claims.home, at).await?
        {
            if !store::invites::use_once(&txn, token, at).await? {
                return Err(gone());
            }
            store::guilds::add_members(&txn, &guild.id, 1).await?;
            let member = Member {
                guild_id: guild.id.clone(),
                user_id: user_id.to_owned(),
                home_server: caller.claims.home.clone(),
                role_ids: vec![],
                joined_at: at,
            };
            let profiles =
                store::profiles::of_users(&txn, std::slice::from_ref(&member.user_id)).await?;
            let joined = MemberJoined {
                member: Some(convert::member(&member, profiles.get(&member.user_id))),
            };
            self.record(&txn, &guild.id, Payload::MemberJoined(joined))
                .await?;
            tracing::info!(guild_id = %guild.id, %user_id, "member joined");
        }
        let guild = store::guilds::find(&txn, &guild.id)
            .await?
            .ok_or_else(gone)?;
        txn.commit().await?;
        self.outbox.wake();
        let token = self.fresh_token(caller).await;
        Ok((guild, token))
    }
}
