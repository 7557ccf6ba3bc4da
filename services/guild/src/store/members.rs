//! Members, their roles, and bans.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::OnConflict,
};

use super::entity::{ban, guild, member, member_role};
use crate::domain::model::{Ban, Member, Membership};

async fn role_ids(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    user_id: &str,
) -> Result<Vec<String>, DbErr> {
    Ok(member_role::Entity::find()
        .filter(member_role::Column::GuildId.eq(guild_id))
        .filter(member_role::Column::UserId.eq(user_id))
        .order_by_asc(member_role::Column::RoleId)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.role_id)
        .collect())
}

pub async fn find(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    user_id: &str,
) -> Result<Option<Member>, DbErr> {
    let Some(m) = member::Entity::find_by_id((guild_id.to_owned(), user_id.to_owned()))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Member {
        role_ids: role_ids(conn, guild_id, user_id).await?,
        guild_id: m.guild_id,
        user_id: m.user_id,
        home_server: m.home_server,
        joined_at: m.joined_at,
    }))
}

/// Adds a member; false when it already was one.
/// Guilds `user_id` is a member of.
pub async fn membership_count(conn: &impl ConnectionTrait, user_id: &str) -> Result<u64, DbErr> {
    member::Entity::find()
        .filter(member::Column::UserId.eq(user_id))
        .count(conn)
        .await
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    user_id: &str,
    home_server: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let inserted = member::Entity::insert(member::ActiveModel {
        guild_id: Set(guild_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        home_server: Set(home_server.to_owned()),
        joined_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([member::Column::GuildId, member::Column::UserId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

/// Removes a member and its role assignments; false when it was not one.
pub async fn delete(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    user_id: &str,
) -> Result<bool, DbErr> {
    member_role::Entity::delete_many()
        .filter(member_role::Column::GuildId.eq(guild_id))
        .filter(member_role::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    let removed = member::Entity::delete_many()
        .filter(member::Column::GuildId.eq(guild_id))
        .filter(member::Column::UserId.eq(user_id))
        .exec(conn)
        .await?
        .rows_affected;
    Ok(removed == 1)
}

/// A page of members ordered by user id, after `after_user_id`.
pub async fn page(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    after_user_id: Option<&str>,
    limit: u64,
) -> Result<Vec<Member>, DbErr> {
    let mut query = member::Entity::find()
        .filter(member::Column::GuildId.eq(guild_id))
        .order_by_asc(member::Column::UserId)
        .limit(limit);
    if let Some(after) = after_user_id {
        query = query.filter(member::Column::UserId.gt(after));
    }
    let rows = query.all(conn).await?;
    // One query for the page's roles, not one per member.
    let mut roles: std::collections::HashMap<String, Vec<String>> = Default::default();
    if !rows.is_empty() {
        for r in member_role::Entity::find()
            .filter(member_role::Column::GuildId.eq(guild_id))
            .filter(member_role::Column::UserId.is_in(rows.iter().map(|m| m.user_id.clone())))
            .order_by_asc(member_role::Column::RoleId)
            .all(conn)
            .await?
        {
            roles.entry(r.user_id).or_default().push(r.role_id);
        }
    }
    Ok(rows
        .into_iter()
        .map(|m| Member {
            role_ids: roles.remove(&m.user_id).unwrap_or_default(),
            guild_id: m.guild_id,
            user_id: m.user_id,
            home_server: m.home_server,
            joined_at: m.joined_at,
        })
        .collect())
}

/// Assigns a role; false when the member already had it.
pub async fn assign(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    user_id: &str,
    role_id: &str,
) -> Result<bool, DbErr> {
    let inserted = member_role::Entity::insert(member_role::ActiveModel {
        guild_id: Set(guild_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        role_id: Set(role_id.to_owned()),
    })
    .on_conflict(
        OnConflict::columns([
            member_role::Column::GuildId,
            member_role::Column::UserId,
            member_role::Column::RoleId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

/// Takes a role away; false when the member did not have it.
pub async fn unassign(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    user_id: &str,
    role_id: &str,
) -> Result<bool, DbErr> {
    let removed = member_role::Entity::delete_many()
        .filter(member_role::Column::GuildId.eq(guild_id))
        .filter(member_role::Column::UserId.eq(user_id))
        .filter(member_role::Column::RoleId.eq(role_id))
        .exec(conn)
        .await?
        .rows_affected;
    Ok(removed == 1)
}

/// Every guild of a user with its roles and permission version, for token claims.
pub async fn memberships(
    conn: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<Membership>, DbErr> {
    let guild_ids: Vec<String> = member::Entity::find()
        .filter(member::Column::UserId.eq(user_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.guild_id)
        .collect();
    let guilds = guild::Entity::find()
        .filter(guild::Column::Id.is_in(guild_ids))
        .all(conn)
        .await?;
    let assignments = member_role::Entity::find()
        .filter(member_role::Column::UserId.eq(user_id))
        .all(conn)
        .await?;
    Ok(guilds
        .into_iter()
        .map(|g| Membership {
            role_ids: assignments
                .iter()
                .filter(|a| a.guild_id == g.id)
                .map(|a| a.role_id.clone())
                .collect(),
            permission_version: g.permission_version.max(0) as u64,
            guild_id: g.id,
        })
        .collect())
}

pub async fn find_ban(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    user_id: &str,
) -> Result<Option<Ban>, DbErr> {
    Ok(
        ban::Entity::find_by_id((guild_id.to_owned(), user_id.to_owned()))
            .one(conn)
            .await?
            .map(to_ban),
    )
}

fn to_ban(b: ban::Model) -> Ban {
    Ban {
        guild_id: b.guild_id,
        user_id: b.user_id,
        reason: b.reason,
        banned_by: b.banned_by,
        banned_at: b.banned_at,
    }
}

/// Records a ban; a second ban of the same user keeps the first record.
pub async fn insert_ban(conn: &impl ConnectionTrait, b: &Ban) -> Result<(), DbErr> {
    ban::Entity::insert(ban::ActiveModel {
        guild_id: Set(b.guild_id.clone()),
        user_id: Set(b.user_id.clone()),
        reason: Set(b.reason.clone()),
        banned_by: Set(b.banned_by.clone()),
        banned_at: Set(b.banned_at),
    })
    .on_conflict(
        OnConflict::columns([ban::Column::GuildId, ban::Column::UserId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

pub async fn delete_ban(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    user_id: &str,
) -> Result<bool, DbErr> {
    let removed = ban::Entity::delete_many()
        .filter(ban::Column::GuildId.eq(guild_id))
        .filter(ban::Column::UserId.eq(user_id))
        .exec(conn)
        .await?
        .rows_affected;
    Ok(removed == 1)
}

pub async fn bans(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    after_user_id: Option<&str>,
    limit: u64,
) -> Result<Vec<Ban>, DbErr> {
    let mut query = ban::Entity::find()
        .filter(ban::Column::GuildId.eq(guild_id))
        .order_by_asc(ban::Column::UserId)
        .limit(limit);
    if let Some(after) = after_user_id {
        query = query.filter(ban::Column::UserId.gt(after));
    }
    Ok(query.all(conn).await?.into_iter().map(to_ban).collect())
}

/// Ids of the guilds `user_id` belongs to.
pub async fn guild_ids_of(
    conn: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<String>, DbErr> {
    Ok(member::Entity::find()
        .filter(member::Column::UserId.eq(user_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.guild_id)
        .collect())
}
