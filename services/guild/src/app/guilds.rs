use mzchat_proto::guild::{GuildDeleted, GuildUpdated, MemberJoined, event::Payload};
use sea_orm::TransactionTrait;

use super::{Caller, FreshToken, GuildApp, caps, now};
use crate::{
    convert,
    domain::{
        GuildError, Result, denied,
        model::{Channel, Guild, Member, Role},
        permissions::{self, ADMIN_WEIGHT, EVERYONE_DEFAULT},
        validate,
    },
    store,
};

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn optional_icon(icon: &str) -> Result<String> {
    if icon.is_empty() {
        return Ok(String::new());
    }
    validate::file_id("icon_file_id", icon)?;
    Ok(icon.to_owned())
}

impl GuildApp {
    /// Creates a guild owned by the caller, with `@everyone`, `Admin` (held by the caller) and a
    /// `general` channel; returns a token that carries the new guild.
    pub async fn create_guild(
        &self,
        caller: &Caller,
        name: &str,
        icon: &str,
    ) -> Result<(Guild, FreshToken)> {
        let name = validate::name("name", name)?;
        let icon = optional_icon(icon)?;
        if !icon.is_empty() {
            self.check_icon(caller.user_id(), &icon).await?;
        }
        let at = now();
        let guild = Guild {
            id: new_id(),
            name,
            icon_file_id: icon,
            owner_id: caller.user_id().to_owned(),
            permission_version: 1,
            member_count: 1,
            created_at: at,
        };
        let everyone = Role {
            id: new_id(),
            guild_id: guild.id.clone(),
            name: "@everyone".into(),
            permissions: EVERYONE_DEFAULT,
            weight: 0,
            color: 0,
            is_everyone: true,
            created_at: at,
        };
        let admin = Role {
            id: new_id(),
            name: "Admin".into(),
            permissions: permissions::ADMINISTRATOR,
            weight: ADMIN_WEIGHT,
            is_everyone: false,
            ..everyone.clone()
        };
        let general = Channel {
            id: new_id(),
            guild_id: guild.id.clone(),
            name: "general".into(),
            topic: String::new(),
            position: 0,
            created_at: at,
        };
        let txn = self.db.begin().await?;
        caps::check_memberships(&txn, caller.user_id()).await?;
        store::guilds::insert(&txn, &guild).await?;
        store::roles::insert(&txn, &everyone).await?;
        store::roles::insert(&txn, &admin).await?;
        store::guilds::insert_channel(&txn, &general).await?;
        store::members::insert(&txn, &guild.id, caller.user_id(), &caller.claims.home, at).await?;
        store::members::assign(&txn, &guild.id, caller.user_id(), &admin.id).await?;
        let member = Member {
            guild_id: guild.id.clone(),
            user_id: caller.user_id().to_owned(),
            home_server: caller.claims.home.clone(),
            role_ids: vec![admin.id.clone()],
            joined_at: at,
        };
        let assets = &self.config.server.assets_origin;
        let created = GuildUpdated {
            guild: Some(convert::guild(&guild, assets)),
        };
        self.record(&txn, &guild.id, Payload::GuildUpdated(created))
            .await?;
        let profiles =
            store::profiles::of_users(&txn, std::slice::from_ref(&member.user_id)).await?;
        let joined = MemberJoined {
            member: Some(convert::member(&member, profiles.get(&member.user_id))),
        };
        self.record(&txn, &guild.id, Payload::MemberJoined(joined))
            .await?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(guild_id = %guild.id, owner = %guild.owner_id, "guild created");
        let token = self.fresh_token(caller).await;
        Ok((guild, token))
    }

    pub async fn get_guild(&self, caller: &Caller, guild_id: &str) -> Result<Guild> {
        let access = self.access_fast(caller, guild_id).await?;
        // The cache serves permission checks; what the client sees is read fresh.
        Ok(store::guilds::find(&self.db, &access.guild.id)
            .await?
            .unwrap_or(access.guild))
    }

    pub async fn update_guild(
        &self,
        caller: &Caller,
        guild_id: &str,
        name: Option<&str>,
        icon: Option<&str>,
    ) -> Result<Guild> {
        let name = name.map(|n| validate::name("name", n)).transpose()?;
        let icon = icon.map(optional_icon).transpose()?;
        // Checked with media before the transaction (no network call inside it).
        if let Some(icon) = icon.as_deref().filter(|i| !i.is_empty()) {
            self.check_icon(caller.user_id(), icon).await?;
        }
        let txn = self.db.begin().await?;
        let access = self.access(&txn, caller, guild_id).await?;
        access.require(permissions::MANAGE_GUILD)?;
        store::guilds::update(
            &txn,
            &access.guild.id,
            name.as_deref(),
            icon.as_deref(),
            now(),
        )
        .await?;
        let guild = store::guilds::find(&txn, &access.guild.id)
            .await?
            .ok_or_else(|| GuildError::Internal("guild vanished".into()))?;
        let updated = GuildUpdated {
            guild: Some(convert::guild(&guild, &self.config.server.assets_origin)),
        };
        self.record(&txn, &guild.id, Payload::GuildUpdated(updated))
            .await?;
        txn.commit().await?;
        self.cache.forget(guild_id);
        self.outbox.wake();
        Ok(guild)
    }

    /// Deletes a guild with everything in it; only its owner may.
    pub async fn delete_guild(&self, caller: &Caller, guild_id: &str) -> Result<()> {
        let txn = self.db.begin().await?;
        let access = self.access(&txn, caller, guild_id).await?;
        if !access.perms.is_owner {
            return Err(denied("only the guild's owner may delete it"));
        }
        store::guilds::delete(&txn, &access.guild.id).await?;
        let deleted = GuildDeleted {
            guild_id: access.guild.id.clone(),
        };
        self.record(&txn, &access.guild.id, Payload::GuildDeleted(deleted))
            .await?;
        txn.commit().await?;
        self.cache.forget(guild_id);
        self.outbox.wake();
        tracing::info!(guild_id = %access.guild.id, "guild deleted");
        Ok(())
    }

    /// The caller's guilds on this server (from the database, not the token: a client with a
    /// stale token still learns where it belongs).
    pub async fn list_guilds(&self, caller: &Caller) -> Result<Vec<Guild>> {
        Ok(store::guilds::of_user(&self.db, caller.user_id()).await?)
    }

    /// Every guild of `user_id` with roles and permission version (internal, for token claims).
    pub async fn memberships(
        &self,
        user_id: &str,
    ) -> Result<Vec<crate::domain::model::Membership>> {
        let user_id = validate::user_id(user_id)?;
        Ok(store::members::memberships(&self.db, &user_id).await?)
    }
}
