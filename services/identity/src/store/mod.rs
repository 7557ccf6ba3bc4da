//! Identity's repositories over its own schema. Functions take any connection, so a use case
//! can run several of them in one transaction.

pub mod accounts;
pub mod bans;
pub mod devices;
mod entity;
pub mod federation;
pub mod keys;
pub mod mailboxes;
pub mod sessions;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, SqlErr};

pub(crate) fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Deletes expired replay-cache entries and mailboxes, and refresh tokens past their expiry.
pub async fn cleanup(conn: &impl ConnectionTrait, now_ms: i64) -> Result<u64, DbErr> {
    let now = now_ms / 1000;
    let nonces = entity::login_nonce::Entity::delete_many()
        .filter(entity::login_nonce::Column::ExpiresAt.lt(now))
        .exec(conn)
        .await?
        .rows_affected;
    let mailboxes = entity::mailbox::Entity::delete_many()
        .filter(entity::mailbox::Column::ExpiresAt.lt(now_ms))
        .exec(conn)
        .await?
        .rows_affected;
    let tokens = entity::refresh_token::Entity::delete_many()
        .filter(entity::refresh_token::Column::ExpiresAt.lt(now_ms))
        .exec(conn)
        .await?
        .rows_affected;
    Ok(nonces + mailboxes + tokens)
}
