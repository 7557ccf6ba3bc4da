//! Open streams (with heartbeats) and the presence last announced per user.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    Set, sea_query::OnConflict,
};

use super::entity::{presence, presence_session};

pub async fn open(
    conn: &impl ConnectionTrait,
    stream_id: &str,
    user_id: &str,
    now: i64,
) -> Result<(), DbErr> {
    presence_session::Entity::insert(presence_session::ActiveModel {
        stream_id: Set(stream_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        heartbeat_at: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

pub async fn heartbeat(
    conn: &impl ConnectionTrait,
    stream_id: &str,
    now: i64,
) -> Result<(), DbErr> {
    presence_session::Entity::update_many()
        .col_expr(presence_session::Column::HeartbeatAt, now.into())
        .filter(presence_session::Column::StreamId.eq(stream_id))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn close(conn: &impl ConnectionTrait, stream_id: &str) -> Result<(), DbErr> {
    presence_session::Entity::delete_by_id(stream_id)
        .exec(conn)
        .await
        .map(|_| ())
}

/// Whether the user holds a stream with a heartbeat after `alive_after`.
/// Streams of `user_id` with a heartbeat after `alive_after`, on every replica.
pub async fn live_stream_count(
    conn: &impl ConnectionTrait,
    user_id: &str,
    alive_after: i64,
) -> Result<u64, DbErr> {
    presence_session::Entity::find()
        .filter(presence_session::Column::UserId.eq(user_id))
        .filter(presence_session::Column::HeartbeatAt.gt(alive_after))
        .count(conn)
        .await
}

pub async fn has_live_stream(
    conn: &impl ConnectionTrait,
    user_id: &str,
    alive_after: i64,
) -> Result<bool, DbErr> {
    Ok(!with_live_streams(conn, &[user_id.to_owned()], alive_after)
        .await?
        .is_empty())
}

/// Which of `user_ids` hold a stream with a heartbeat after `alive_after`.
pub async fn with_live_streams(
    conn: &impl ConnectionTrait,
    user_ids: &[String],
    alive_after: i64,
) -> Result<std::collections::HashSet<String>, DbErr> {
    if user_ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(presence_session::Entity::find()
        .filter(presence_session::Column::UserId.is_in(user_ids.iter().cloned()))
        .filter(presence_session::Column::HeartbeatAt.gt(alive_after))
        .all(conn)
        .await?
        .into_iter()
        .map(|s| s.user_id)
        .collect())
}

/// The user's announced presence, locked for the transaction (PostgreSQL), so one user's
/// transitions happen one at a time and their events land in the log in that order.
pub async fn lock(conn: &impl ConnectionTrait, user_id: &str, now: i64) -> Result<bool, DbErr> {
    presence::Entity::insert(presence::ActiveModel {
        user_id: Set(user_id.to_owned()),
        online: Set(false),
        changed_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(presence::Column::UserId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    let mut query = presence::Entity::find_by_id(user_id);
    if mzchat_platform::db::supports_row_locks(conn) {
        query = query.lock_exclusive();
    }
    Ok(query.one(conn).await?.is_some_and(|p| p.online))
}

pub async fn set(
    conn: &impl ConnectionTrait,
    user_id: &str,
    online: bool,
    now: i64,
) -> Result<(), DbErr> {
    presence::Entity::update_many()
        .col_expr(presence::Column::Online, online.into())
        .col_expr(presence::Column::ChangedAt, now.into())
        .filter(presence::Column::UserId.eq(user_id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// How many users are announced online.
pub async fn online_count(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    presence::Entity::find()
        .filter(presence::Column::Online.eq(true))
        .count(conn)
        .await
}

/// Users announced online (candidates for going offline when their streams died).
pub async fn online_users(conn: &impl ConnectionTrait, limit: u64) -> Result<Vec<String>, DbErr> {
    Ok(presence::Entity::find()
        .filter(presence::Column::Online.eq(true))
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|p| p.user_id)
        .collect())
}

/// Forgets streams whose heartbeat stopped before `dead_before`.
pub async fn drop_dead(conn: &impl ConnectionTrait, dead_before: i64) -> Result<u64, DbErr> {
    Ok(presence_session::Entity::delete_many()
        .filter(presence_session::Column::HeartbeatAt.lt(dead_before))
        .exec(conn)
        .await?
        .rows_affected)
}
