use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entity::ban_notification;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanNotice {
    pub id: String,
    pub origin: String,
    pub guild_id: String,
    pub guild_name: String,
    pub reason: String,
    pub banned_at: i64,
    pub received_at: i64,
}

/// A page of a user's ban notifications, newest first, starting after `after_id`.
pub async fn list(
    conn: &impl ConnectionTrait,
    user_id: &str,
    after_id: Option<&str>,
    limit: u64,
) -> Result<Vec<BanNotice>, DbErr> {
    let mut query = ban_notification::Entity::find()
        .filter(ban_notification::Column::UserId.eq(user_id))
        .order_by_desc(ban_notification::Column::Id)
        .limit(limit);
    if let Some(after) = after_id {
        query = query.filter(ban_notification::Column::Id.lt(after));
    }
    Ok(query
        .all(conn)
        .await?
        .into_iter()
        .map(|m| BanNotice {
            id: m.id,
            origin: m.origin,
            guild_id: m.guild_id,
            guild_name: m.guild_name,
            reason: m.reason,
            banned_at: m.banned_at,
            received_at: m.received_at,
        })
        .collect())
}
