use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};

use super::entity::invite;
use crate::domain::model::Invite;

fn to_invite(m: invite::Model) -> Invite {
    Invite {
        token: m.token,
        guild_id: m.guild_id,
        channel_id: m.channel_id,
        creator_id: m.creator_id,
        uses: u32::try_from(m.uses).unwrap_or(u32::MAX),
        max_uses: u32::try_from(m.max_uses).unwrap_or(0),
        expires_at: m.expires_at,
        revoked: m.revoked_at.is_some(),
    }
}

pub async fn insert(conn: &impl ConnectionTrait, i: &Invite, now: i64) -> Result<(), DbErr> {
    invite::ActiveModel {
        token: Set(i.token.clone()),
        guild_id: Set(i.guild_id.clone()),
        channel_id: Set(i.channel_id.clone()),
        creator_id: Set(i.creator_id.clone()),
        uses: Set(0),
        max_uses: Set(i64::from(i.max_uses)),
        expires_at: Set(i.expires_at),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await
    .map(|_| ())
}

pub async fn find(conn: &impl ConnectionTrait, token: &str) -> Result<Option<Invite>, DbErr> {
    Ok(invite::Entity::find_by_id(token)
        .one(conn)
        .await?
        .map(to_invite))
}

/// Live invites of a guild, newest first, after `after_token`.
pub async fn page(
    conn: &impl ConnectionTrait,
    guild_id: &str,
    after_token: Option<&str>,
    limit: u64,
    now: i64,
) -> Result<Vec<Invite>, DbErr> {
    let mut query = invite::Entity::find()
        .filter(invite::Column::GuildId.eq(guild_id))
        .filter(invite::Column::RevokedAt.is_null())
        .filter(invite::Column::ExpiresAt.gt(now))
        .order_by_asc(invite::Column::Token)
        .limit(limit);
    if let Some(after) = after_token {
        query = query.filter(invite::Column::Token.gt(after));
    }
    Ok(query.all(conn).await?.into_iter().map(to_invite).collect())
}

pub async fn revoke(conn: &impl ConnectionTrait, token: &str, now: i64) -> Result<(), DbErr> {
    invite::Entity::update_many()
        .col_expr(invite::Column::RevokedAt, now.into())
        .filter(invite::Column::Token.eq(token))
        .filter(invite::Column::RevokedAt.is_null())
        .exec(conn)
        .await
        .map(|_| ())
}

/// Counts one use if the invite is live and has uses left. The check and the count are one
/// statement, so concurrent joins can never exceed `max_uses`.
pub async fn use_once(conn: &impl ConnectionTrait, token: &str, now: i64) -> Result<bool, DbErr> {
    let used = invite::Entity::update_many()
        .col_expr(invite::Column::Uses, Expr::col(invite::Column::Uses).add(1))
        .filter(invite::Column::Token.eq(token))
        .filter(invite::Column::RevokedAt.is_null())
        .filter(invite::Column::ExpiresAt.gt(now))
        .filter(
            Condition::any()
                .add(invite::Column::MaxUses.eq(0))
                .add(Expr::col(invite::Column::Uses).lt(Expr::col(invite::Column::MaxUses))),
        )
        .exec(conn)
        .await?
        .rows_affected;
    Ok(used == 1)
}
