use mzchat_proto::guild::{
    PermissionsChanged, RoleCreated, RoleDeleted, RoleUpdated, event::Payload,
};
use sea_orm::{DatabaseTransaction, TransactionTrait};

use super::{Caller, GuildApp, access::Access, caps, now};
use crate::{
    convert,
    domain::{
        Result, denied, invalid,
        model::Role,
        not_found,
        permissions::{ALL, MANAGE_ROLES},
        validate,
    },
    store,
};

/// A role change: `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct RoleChange {
    pub name: Option<String>,
    pub permissions: Option<u64>,
    pub weight: Option<u32>,
    pub color: Option<u32>,
}

fn known_bits(bits: u64) -> Result<u64> {
    if bits & !ALL == 0 {
        Ok(bits)
    } else {
        Err(invalid(
            "permissions holds bits no permission is defined for",
        ))
    }
}

impl GuildApp {
    /// Opens a transaction holding the guild's row lock and admits a caller with MANAGE_ROLES:
    /// changes to roles take turns, each with its own permission version.
    async fn role_change(
        &self,
        caller: &Caller,
        guild_id: &str,
    ) -> Result<(DatabaseTransaction, Access)> {
        let txn = self.db.begin().await?;
        store::guilds::find_for_update(&txn, &validate::id("guild_id", guild_id)?).await?;
        let access = self.access(&txn, caller, guild_id).await?;
        access.require(MANAGE_ROLES)?;
        Ok((txn, access))
    }

    /// Bumps the permission version and announces it, in the change's transaction.
    pub(crate) async fn permissions_changed(
        &self,
        txn: &DatabaseTransaction,
        guild_id: &str,
    ) -> Result<u64> {
        let version = store::guilds::bump_version(txn, guild_id).await?;
        let changed = PermissionsChanged {
            guild_id: guild_id.to_owned(),
            version,
        };
        self.record(txn, guild_id, Payload::PermissionsChanged(changed))
            .await?;
        Ok(version)
    }

    pub async fn create_role(
        &self,
        caller: &Caller,
        guild_id: &str,
        name: &str,
        permissions: u64,
        weight: u32,
        color: u32,
    ) -> Result<(Role, u64)> {
        let name = validate::name("name", name)?;
        let permissions = known_bits(permissions)?;
        let color = validate::color(color)?;
        if weight == 0 {
            return Err(invalid("weight must be above 0 (the weight of @everyone)"));
        }
        let (txn, access) = self.role_change(caller, guild_id).await?;
        access.require_outranks(weight, "the new role")?;
        caps::check_roles(access.roles.len())?;
        if !access.perms.may_grant(permissions) {
            return Err(denied(
                "a role can only grant permissions you hold yourself",
            ));
        }
        let role = Role {
            id: uuid::Uuid::now_v7().to_string(),
            guild_id: access.guild.id.clone(),
            name,
            permissions,
            weight,
            color,
            is_everyone: false,
            created_at: now(),
        };
        store::roles::insert(&txn, &role).await?;
        let created = RoleCreated {
            role: Some(convert::role(&role)),
        };
        self.record(&txn, &role.guild_id, Payload::RoleCreated(created))
            .await?;
        let version = self.permissions_changed(&txn, &role.guild_id).await?;
        txn.commit().await?;
        self.cache.forget(guild_id);
        self.outbox.wake();
        Ok((role, version))
    }

    pub async fn update_role(
        &self,
        caller: &Caller,
        guild_id: &str,
        role_id: &str,
        change: RoleChange,
    ) -> Result<(Role, u64)> {
        let name = change
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?;
        let permissions = change.permissions.map(known_bits).transpose()?;
        let color = change.color.map(validate::color).transpose()?;
        let (txn, access) = self.role_change(caller, guild_id).await?;
        let mut role = access.role(role_id)?.clone();
        access.require_outranks(role.weight, "this role")?;
        if role.is_everyone && (name.is_some() || change.weight.is_some()) {
            return Err(invalid(
                "@everyone keeps its name and weight; only its permissions and color change",
            ));
        }
        if let Some(weight) = change.weight {
            if weight == 0 {
                return Err(invalid("weight must be above 0 (the weight of @everyone)"));
            }
            access.require_outranks(weight, "the new weight")?;
            role.weight = weight;
        }
        if let Some(bits) = permissions {
            if !access.perms.may_grant(bits) {
                return Err(denied(
                    "a role can only grant permissions you hold yourself",
                ));
            }
            role.permissions = bits;
        }
        if let Some(name) = name {
            role.name = name;
        }
        if let Some(color) = color {
            role.color = color;
        }
        store::roles::update(&txn, &role).await?;
        let updated = RoleUpdated {
            role: Some(convert::role(&role)),
        };
        self.record(&txn, &role.guild_id, Payload::RoleUpdated(updated))
            .await?;
        let version = self.permissions_changed(&txn, &role.guild_id).await?;
        txn.commit().await?;
        self.cache.forget(guild_id);
        self.outbox.wake();
        Ok((role, version))
    }

    pub async fn delete_role(&self, caller: &Caller, guild_id: &str, role_id: &str) -> Result<u64> {
        let (txn, access) = self.role_change(caller, guild_id).await?;
        let role = access.role(role_id)?.clone();
        if role.is_everyone {
            return Err(invalid("@everyone cannot be deleted"));
        }
        access.require_outranks(role.weight, "this role")?;
        store::roles::delete(&txn, &role.id).await?;
        let deleted = RoleDeleted {
            guild_id: role.guild_id.clone(),
            role_id: role.id.clone(),
        };
        self.record(&txn, &role.guild_id, Payload::RoleDeleted(deleted))
            .await?;
        let version = self.permissions_changed(&txn, &role.guild_id).await?;
        txn.commit().await?;
        self.cache.forget(guild_id);
        self.outbox.wake();
        Ok(version)
    }

    pub async fn list_roles(&self, caller: &Caller, guild_id: &str) -> Result<Vec<Role>> {
        Ok(self.access_fast(caller, guild_id).await?.roles)
    }

    /// Gives (`assign`) or takes away a role; idempotent, and only a real change bumps the
    /// permission version.
    pub async fn set_role(
        &self,
        caller: &Caller,
        guild_id: &str,
        user_id: &str,
        role_id: &str,
        assign: bool,
    ) -> Result<u64> {
        let user_id = validate::user_id(user_id)?;
        let (txn, access) = self.role_change(caller, guild_id).await?;
        let role = access.role(role_id)?.clone();
        if role.is_everyone {
            return Err(invalid("every member has @everyone; it is not assigned"));
        }
        access.require_outranks(role.weight, "this role")?;
        let member = store::members::find(&txn, &access.guild.id, &user_id)
            .await?
            .ok_or_else(|| not_found("that user is not a member of this guild"))?;
        // Nobody changes the roles of someone ranked as high or higher (owner excepted).
        if access.guild.owner_id == user_id && !access.perms.is_owner {
            return Err(denied("the owner's roles are not yours to change"));
        }
        if user_id != caller.user_id() {
            access.require_outranks(access.top_weight(&member.role_ids), "that member")?;
        }
        if assign && !member.role_ids.contains(&role.id) {
            caps::check_member_roles(member.role_ids.len())?;
        }
        let changed = if assign {
            store::members::assign(&txn, &access.guild.id, &user_id, &role.id).await?
        } else {
            store::members::unassign(&txn, &access.guild.id, &user_id, &role.id).await?
        };
        let version = if changed {
            self.permissions_changed(&txn, &access.guild.id).await?
        } else {
            access.guild.permission_version
        };
        txn.commit().await?;
        self.cache.forget(guild_id);
        self.outbox.wake();
        Ok(version)
    }
}
