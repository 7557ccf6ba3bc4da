use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

use super::entity::role;
use crate::domain::model::Role;

fn to_role(m: role::Model) -> Role {
    Role {
        id: m.id,
        guild_id: m.guild_id,
        name: m.name,
        permissions: m.permissions as u64,
        weight: u32::try_from(m.weight).unwrap_or(0),
        color: u32::try_from(m.color).unwrap_or(0),
        is_everyone: m.is_everyone,
        created_at: m.created_at,
    }
}

pub async fn insert(conn: &impl ConnectionTrait, r: &Role) -> Result<(), DbErr> {
    role::ActiveModel {
        id: Set(r.id.clone()),
        guild_id: Set(r.guild_id.clone()),
        name: Set(r.name.clone()),
        permissions: Set(r.permissions as i64),
        weight: Set(i64::from(r.weight)),
        color: Set(i64::from(r.color)),
        is_everyone: Set(r.is_everyone),
        created_at: Set(r.created_at),
    }
    .insert(conn)
    .await
    .map(|_| ())
}

pub async fn update(conn: &impl ConnectionTrait, r: &Role) -> Result<(), DbErr> {
    role::Entity::update_many()
        .col_expr(role::Column::Name, r.name.clone().into())
        .col_expr(role::Column::Permissions, (r.permissions as i64).into())
        .col_expr(role::Column::Weight, i64::from(r.weight).into())
        .col_expr(role::Column::Color, i64::from(r.color).into())
        .filter(role::Column::Id.eq(r.id.as_str()))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn delete(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    role::Entity::delete_by_id(id).exec(conn).await.map(|_| ())
}

/// Every role of the guild, `@everyone` first, then by weight.
pub async fn of_guild(conn: &impl ConnectionTrait, guild_id: &str) -> Result<Vec<Role>, DbErr> {
    let mut roles: Vec<Role> = role::Entity::find()
        .filter(role::Column::GuildId.eq(guild_id))
        .order_by_asc(role::Column::Weight)
        .order_by_asc(role::Column::CreatedAt)
        .all(conn)
        .await?
        .into_iter()
        .map(to_role)
        .collect();
    roles.sort_by_key(|r| (!r.is_everyone, r.weight));
    Ok(roles)
}
