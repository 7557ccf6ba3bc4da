use mzchat_platform::federation::jobs;
use mzchat_proto::{
    federation::{PropagateBanJob, federation_job},
    guild::{MemberBanned, MemberLeft, event::Payload},
};
use sea_orm::TransactionTrait;

use super::{Caller, GuildApp, now, page_size};
use crate::{
    domain::{
        GuildError, Result, denied, invalid,
        model::{Ban, Member},
        not_found,
        permissions::{BAN_MEMBERS, KICK_MEMBERS},
        validate::{self, MAX_REASON_CHARS},
    },
    store,
};

impl GuildApp {
    /// The profiles identity shows for these users (absent: none received yet).
    pub async fn profiles(
        &self,
        user_ids: &[String],
    ) -> Result<std::collections::HashMap<String, mzchat_proto::common::Profile>> {
        Ok(store::profiles::of_users(&self.db, user_ids).await?)
    }

    /// Keeps a profile identity published.
    pub async fn apply_profile(&self, profile: &mzchat_proto::common::Profile) -> Result<()> {
        validate::user_id(&profile.user_id)?;
        Ok(store::profiles::upsert(&self.db, profile, now()).await?)
    }

    pub async fn list_members(
        &self,
        caller: &Caller,
        guild_id: &str,
        size: i32,
        token: &str,
    ) -> Result<(Vec<Member>, String)> {
        let limit = page_size(size)?;
        let access = self.access_fast(caller, guild_id).await?;
        let after = (!token.is_empty())
            .then(|| validate::user_id(token))
            .transpose()?;
        let members =
            store::members::page(&self.db, &access.guild.id, after.as_deref(), limit).await?;
        let next = if members.len() as u64 == limit {
            members
                .last()
                .map(|m| m.user_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((members, next))
    }

    pub async fn get_member(
        &self,
        caller: &Caller,
        guild_id: &str,
        user_id: &str,
    ) -> Result<Member> {
        let user_id = validate::user_id(user_id)?;
        let access = self.access_fast(caller, guild_id).await?;
        store::members::find(&self.db, &access.guild.id, &user_id)
            .await?
            .ok_or_else(|| not_found("that user is not a member of this guild"))
    }

    /// Removes a member: kicked by someone who outranks them, or leaving on their own.
    async fn remove_member(
        &self,
        caller: &Caller,
        guild_id: &str,
        user_id: &str,
        kicked: bool,
    ) -> Result<()> {
        let txn = self.db.begin().await?;
        store::guilds::find_for_update(&txn, &validate::id("guild_id", guild_id)?).await?;
        let access = self.access(&txn, caller, guild_id).await?;
        if access.guild.owner_id == user_id {
            return Err(GuildError::FailedPrecondition(
                "the owner cannot leave or be removed; delete the guild instead".into(),
            ));
        }
        let member = store::members::find(&txn, &access.guild.id, user_id)
            .await?
            .ok_or_else(|| not_found("that user is not a member of this guild"))?;
        if kicked {
            access.require(KICK_MEMBERS)?;
            access.require_outranks(access.top_weight(&member.role_ids), "that member")?;
        }
        store::members::delete(&txn, &access.guild.id, user_id).await?;
        store::guilds::add_members(&txn, &access.guild.id, -1).await?;
        let left = MemberLeft {
            guild_id: access.guild.id.clone(),
            user_id: user_id.to_owned(),
            kicked_by: if kicked {
                caller.user_id().to_owned()
            } else {
                String::new()
            },
        };
        self.record(&txn, &access.guild.id, Payload::MemberLeft(left))
            .await?;
        // The removed member's token must stop working here: a new version makes it stale.
        self.permissions_changed(&txn, &access.guild.id).await?;
        txn.commit().await?;
        self.cache.forget(guild_id);
        self.outbox.wake();
        Ok(())
    }

    pub async fn kick(&self, caller: &Caller, guild_id: &str, user_id: &str) -> Result<()> {
        let user_id = validate::user_id(user_id)?;
        if user_id == caller.user_id() {
            return Err(invalid("use LeaveGuild to leave"));
        }
        self.remove_member(caller, guild_id, &user_id, true).await
    }

    pub async fn leave(&self, caller: &Caller, guild_id: &str) -> Result<()> {
        let user_id = caller.user_id().to_owned();
        self.remove_member(caller, guild_id, &user_id, false).await
    }

    /// Bans a user (member or not) by user id, so no invite lets them back in.
    pub async fn ban(
        &self,
        caller: &Caller,
        guild_id: &str,
        user_id: &str,
        reason: &str,
        propagate: bool,
    ) -> Result<Ban> {
        let user_id = validate::user_id(user_id)?;
        let reason = validate::text("reason", reason, MAX_REASON_CHARS)?;
        if user_id == caller.user_id() {
            return Err(invalid("you cannot ban yourself"));
        }
        let txn = self.db.begin().await?;
        store::guilds::find_for_update(&txn, &validate::id("guild_id", guild_id)?).await?;
        let access = self.access(&txn, caller, guild_id).await?;
        access.require(BAN_MEMBERS)?;
        if access.guild.owner_id == user_id {
            return Err(denied("the owner cannot be banned"));
        }
        let member = store::members::find(&txn, &access.guild.id, &user_id).await?;
        if let Some(member) = &member {
            access.require_outranks(access.top_weight(&member.role_ids), "that member")?;
        }
        // Only a member's home server is known here (from the token they joined with).
        let report_to = match (&member, propagate) {
            (_, false) => None,
            (Some(member), true) => Some(member.home_server.clone()),
            (None, true) => {
                return Err(GuildError::FailedPrecondition(
                    "the user is not a member here, so their home server is unknown; ban without propagation"
                        .into(),
                ));
            }
        };
        let ban = Ban {
            guild_id: access.guild.id.clone(),
            user_id: user_id.clone(),
            reason,
            banned_by: caller.user_id().to_owned(),
            banned_at: now(),
        };
        store::members::insert_ban(&txn, &ban).await?;
        let banned = MemberBanned {
            guild_id: access.guild.id.clone(),
            user_id: user_id.clone(),
            banned_by: ban.banned_by.clone(),
        };
        self.record(&txn, &access.guild.id, Payload::MemberBanned(banned))
            .await?;
        if member.is_some() {
            store::members::delete(&txn, &access.guild.id, &user_id).await?;
            store::guilds::add_members(&txn, &access.guild.id, -1).await?;
            self.permissions_changed(&txn, &access.guild.id).await?;
        }
        let stored = store::members::find_ban(&txn, &access.guild.id, &user_id)
            .await?
            .unwrap_or(ban);
        if let Some(home) = report_to.filter(|h| h != self.config.server.origin.as_str()) {
            let remaining = store::members::guild_ids_of(&txn, &user_id).await?.len();
            let job = PropagateBanJob {
                user_id: user_id.clone(),
                guild_id: access.guild.id.clone(),
                guild_name: access.guild.name.clone(),
                reason: stored.reason.clone(),
                banned_at: Some(prost_types::Timestamp {
                    seconds: stored.banned_at / 1000,
                    nanos: 0,
                }),
                remaining_memberships: u32::try_from(remaining).unwrap_or(u32::MAX),
                follow_up: false,
            };
            let job = jobs::new_job(&home, federation_job::Kind::PropagateBan(job));
            self.outbox.enqueue(&txn, jobs::job_event(&job)).await?;
        }
        txn.commit().await?;
        self.cache.forget(guild_id);
        self.outbox.wake();
        Ok(stored)
    }

    pub async fn unban(&self, caller: &Caller, guild_id: &str, user_id: &str) -> Result<()> {
        let user_id = validate::user_id(user_id)?;
        let access = self.access_fast(caller, guild_id).await?;
        access.require(BAN_MEMBERS)?;
        if !store::members::delete_ban(&self.db, &access.guild.id, &user_id).await? {
            return Err(not_found("that user is not banned here"));
        }
        Ok(())
    }

    pub async fn list_bans(
        &self,
        caller: &Caller,
        guild_id: &str,
        size: i32,
        token: &str,
    ) -> Result<(Vec<Ban>, String)> {
        let limit = page_size(size)?;
        let access = self.access_fast(caller, guild_id).await?;
        access.require(BAN_MEMBERS)?;
        let after = (!token.is_empty())
            .then(|| validate::user_id(token))
            .transpose()?;
        let bans =
            store::members::bans(&self.db, &access.guild.id, after.as_deref(), limit).await?;
        let next = if bans.len() as u64 == limit {
            bans.last().map(|b| b.user_id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((bans, next))
    }
}
