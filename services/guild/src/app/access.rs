//! Who may do what in a guild: the token's permission version for the guild must be the
//! current one, and permissions come from the roles the token names (PROTOCOL.md sections 3, 6).

use sea_orm::ConnectionTrait;

use super::{Caller, GuildApp};
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
    /// Admits the caller to `guild_id`: the guild exists, the token lists it, and its version
    /// is current.
    pub(crate) async fn access(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        guild_id: &str,
    ) -> Result<Access> {
        let guild_id = validate::id("guild_id", guild_id)?;
        let guild = store::guilds::find(conn, &guild_id)
            .await?
            .ok_or_else(|| not_found("no such guild on this server"))?;
        let Some(version) = caller.claims.permission_versions_by_guild.get(&guild_id) else {
            return Err(denied(
                "you are not a member of this guild (if you just joined, use the token JoinInvite returned)",
            ));
        };
        if *version != guild.permission_version {
            return Err(GuildError::PermissionsStale {
                guild_id,
                current: guild.permission_version,
            });
        }
        let token_roles = caller
            .claims
            .guild_roles
            .get(&guild.id)
            .cloned()
            .unwrap_or_default();
        let roles = store::roles::of_guild(conn, &guild.id).await?;
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
}
