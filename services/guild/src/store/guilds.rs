//! Guilds and channels.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};

use super::entity::{channel, guild, member};
use crate::domain::model::{Channel, Guild};

fn to_guild(m: guild::Model) -> Guild {
    Guild {
        id: m.id,
        name: m.name,
        icon_file_id: m.icon_file_id,
        owner_id: m.owner_id,
        permission_version: u64::try_from(m.permission_version).unwrap_or(0),
        member_count: u64::try_from(m.member_count).unwrap_or(0),
        created_at: m.created_at,
    }
}

fn to_channel(m: channel::Model) -> Channel {
    Channel {
        id: m.id,
        guild_id: m.guild_id,
        name: m.name,
        topic: m.topic,
        position: u32::try_from(m.position).unwrap_or(u32::MAX),
        created_at: m.created_at,
    }
}

pub async fn insert(conn: &impl ConnectionTrait, g: &Guild) -> Result<(), DbErr> {
    guild::ActiveModel {
        id: Set(g.id.clone()),
        name: Set(g.name.clone()),
        icon_file_id: Set(g.icon_file_id.clone()),
        owner_id: Set(g.owner_id.clone()),
        permission_version: Set(g.permission_version as i64),
        member_count: Set(g.member_count as i64),
        created_at: Set(g.created_at),
        updated_at: Set(g.created_at),
    }
    .insert(conn)
    .await
    .map(|_| ())
}

pub async fn find(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Guild>, DbErr> {
    Ok(guild::Entity::find_by_id(id).one(conn).await?.map(to_guild))
}

/// The guild, locked until the transaction ends (PostgreSQL), so changes to its roles and
/// members are serialised and each bumps the permission version in turn.
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<Guild>, DbErr> {
    let mut query = guild::Entity::find_by_id(id);
    if mzchat_platform::db::supports_row_locks(conn) {
        query = query.lock_exclusive();
    }
    Ok(query.one(conn).await?.map(to_guild))
}

pub async fn update(
    conn: &impl ConnectionTrait,
    id: &str,
    name: Option<&str>,
    icon: Option<&str>,
    now: i64,
) -> Result<(), DbErr> {
    let mut update = guild::Entity::update_many()
        .col_expr(guild::Column::UpdatedAt, now.into())
        .filter(guild::Column::Id.eq(id));
    if let Some(name) = name {
        update = update.col_expr(guild::Column::Name, name.into());
    }
    if let Some(icon) = icon {
        update = update.col_expr(guild::Column::IconFileId, icon.into());
    }
    update.exec(conn).await.map(|_| ())
}

pub async fn delete(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    guild::Entity::delete_by_id(id).exec(conn).await.map(|_| ())
}

/// Increments the permission version; returns the new one.
pub async fn bump_version(conn: &impl ConnectionTrait, id: &str) -> Result<u64, DbErr> {
    guild::Entity::update_many()
        .col_expr(
            guild::Column::PermissionVersion,
            Expr::col(guild::Column::PermissionVersion).add(1),
        )
        .filter(guild::Column::Id.eq(id))
        .exec(conn)
        .await?;
    let guild = find(conn, id)
        .await?
        .ok_or(DbErr::RecordNotFound(format!("guild {id}")))?;
    Ok(guild.permission_version)
}

pub async fn add_members(conn: &impl ConnectionTrait, id: &str, delta: i64) -> Result<(), DbErr> {
    guild::Entity::update_many()
        .col_expr(
            guild::Column::MemberCount,
            Expr::col(guild::Column::MemberCount).add(delta),
        )
        .filter(guild::Column::Id.eq(id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// The guilds `user_id` is a member of, oldest first.
pub async fn of_user(conn: &impl ConnectionTrait, user_id: &str) -> Result<Vec<Guild>, DbErr> {
    let ids: Vec<String> = member::Entity::find()
        .filter(member::Column::UserId.eq(user_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| m.guild_id)
        .collect();
    Ok(guild::Entity::find()
        .filter(guild::Column::Id.is_in(ids))
        .order_by_asc(guild::Column::CreatedAt)
        .all(conn)
        .await?
        .into_iter()
        .map(to_guild)
        .collect())
}

pub async fn insert_channel(conn: &impl ConnectionTrait, c: &Channel) -> Result<(), DbErr> {
    channel::ActiveModel {
        id: Set(c.id.clone()),
        guild_id: Set(c.guild_id.clone()),
        name: Set(c.name.clone()),
        topic: Set(c.topic.clone()),
        position: Set(i64::from(c.position)),
        kind: Set(1),
        created_at: Set(c.created_at),
    }
    .insert(conn)
    .await
    .map(|_| ())
}

pub async fn find_channel(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    id: &str,
) -> Result<Option<Channel>, DbErr> {
    Ok(channel::Entity::find_by_id(id)
        .filter(channel::Column::GuildId.eq(guild_id))
        .one(conn)
        .await?
        .map(to_channel))
}

pub async fn channels(conn: &impl ConnectionTrait, guild_id: &str) -> Result<Vec<Channel>, DbErr> {
    Ok(channel::Entity::find()
        .filter(channel::Column::GuildId.eq(guild_id))
        .order_by_asc(channel::Column::Position)
        .order_by_asc(channel::Column::CreatedAt)
        .all(conn)
        .await?
        .into_iter()
        .map(to_channel)
        .collect())
}

/// Channels of `guild_id`.
pub async fn channel_count(conn: &impl ConnectionTrait, guild_id: &str) -> Result<u64, DbErr> {
    channel::Entity::find()
        .filter(channel::Column::GuildId.eq(guild_id))
        .count(conn)
        .await
}

/// One past the last channel's position.
pub async fn next_position(conn: &impl ConnectionTrait, guild_id: &str) -> Result<u32, DbErr> {
    let last = channel::Entity::find()
        .filter(channel::Column::GuildId.eq(guild_id))
        .order_by_desc(channel::Column::Position)
        .limit(1)
        .one(conn)
        .await?;
    Ok(last.map_or(0, |c| u32::try_from(c.position + 1).unwrap_or(u32::MAX)))
}

pub async fn update_channel(conn: &impl ConnectionTrait, c: &Channel) -> Result<(), DbErr> {
    channel::Entity::update_many()
        .col_expr(channel::Column::Name, c.name.clone().into())
        .col_expr(channel::Column::Topic, c.topic.clone().into())
        .col_expr(channel::Column::Position, i64::from(c.position).into())
        .filter(channel::Column::Id.eq(c.id.as_str()))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn delete_channel(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    channel::Entity::delete_by_id(id)
        .exec(conn)
        .await
        .map(|_| ())
}
