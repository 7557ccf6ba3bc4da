//! Who may do what in a guild: the token's permission version for the guild must be the
//! current one, and permissions come from the roles the token names (PROTOCOL.md sections 3, 6).

use sea_orm::ConnectionTrait;

use super::{Caller, GuildApp, cache::GuildState};
use crate::{
    domain::{
        GuildError, Result, denied,
        model::{Guild, Role},
        not_found,
        permissions::{self, MemberPermissions, RoleGrant},
        validate,
    },
    store,
};

/// A caller admitted to a guild.
#[derive(Debug, Clone)]
pub struct Access {
    pub guild: Guild,
    pub roles: Vec<Role>,
    pub perms: MemberPermissions,
}

impl Access {
    pub fn require(&self, bit: u64) -> Result<()> {
        if self.perms.has(bit) {
            Ok(())
        } else {
            Err(denied(format!(
                "this needs the {} permission",
                permissions::name(bit)
            )))
        }
    }

    pub fn require_outranks(&self, weight: u32, what: &str) -> Result<()> {
        if self.perms.outranks(weight) {
            Ok(())
        } else {
            Err(denied(format!(
                "{what} has a role as high as or higher than yours"
            )))
        }
    }

    pub fn role(&self, role_id: &str) -> Result<&Role> {
        self.roles
            .iter()
            .find(|r| r.id == role_id)
            .ok_or_else(|| not_found("no such role in this guild"))
    }

    /// The highest weight among a member's roles.
    pub fn top_weight(&self, role_ids: &[String]) -> u32 {
        self.roles
            .iter()
            .filter(|r| role_ids.contains(&r.id))
            .map(|r| r.weight)
            .max()
            .unwrap_or(0)
    }
}

impl GuildApp {
    /// Admits the caller to `guild_id`, reading the guild in `conn` (use inside transactions
    /// that change the guild).
    pub(crate) async fn access(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        guild_id: &str,
    ) -> Result<Access> {
        let guild_id = validate::id("guild_id", guild_id)?;
        let state = self.load_state(conn, &guild_id).await?;
        admit(caller, state)
    }

    /// Admits the caller from the permission cache (the hot path of reads and sends).
    pub(crate) async fn access_fast(&self, caller: &Caller, guild_id: &str) -> Result<Access> {
        let guild_id = validate::id("guild_id", guild_id)?;
        let token_version = caller
            .claims
            .permission_versions_by_guild
            .get(&guild_id)
            .copied();
        let cached = self
            .cache
            .get(&guild_id)
            // A token newer than the cache means the cache is behind: reload.
            .filter(|state| token_version.is_none_or(|v| v <= state.guild.permission_version));
        let state = match cached {
            Some(state) => state,
            None => {
                let state = self.load_state(&self.db, &guild_id).await?;
                self.cache.put(state.clone());
                state
            }
        };
        admit(caller, state)
    }

    async fn load_state(&self, conn: &impl ConnectionTrait, guild_id: &str) -> Result<GuildState> {
        let guild = store::guilds::find(conn, guild_id)
            .await?
            .ok_or_else(|| not_found("no such guild on this server"))?;
        let roles = store::roles::of_guild(conn, &guild.id).await?;
        Ok(GuildState { guild, roles })
    }
}

/// The token must list the guild at its current version; permissions come from the roles the
/// token names plus `@everyone`.
fn admit(caller: &Caller, state: GuildState) -> Result<Access> {
    let GuildState { guild, roles } = state;
    let Some(version) = caller.claims.permission_versions_by_guild.get(&guild.id) else {
        return Err(denied(
            "you are not a member of this guild (if you just joined, use the token JoinInvite returned)",
        ));
    };
    if *version != guild.permission_version {
        return Err(GuildError::PermissionsStale {
            guild_id: guild.id,
            current: guild.permission_version,
        });
    }
    let token_roles = caller
        .claims
        .guild_roles
        .get(&guild.id)
        .cloned()
        .unwrap_or_default();
    let grants: Vec<RoleGrant> = roles
        .iter()
        .filter(|r| r.is_everyone || token_roles.contains(&r.id))
        .map(|r| RoleGrant {
            permissions: r.permissions,
            weight: r.weight,
        })
        .collect();
    let perms = MemberPermissions::resolve(guild.owner_id == caller.claims.sub, grants);
    Ok(Access {
        guild,
        roles,
        perms,
    })
}
