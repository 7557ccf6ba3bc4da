//! Refresh tokens (stored hashed, rotated on every use, reuse revokes the chain) and the login
//! replay cache, both shared by every replica through the database.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::{
    entity::{login_nonce, refresh_token},
    is_unique_violation,
};

/// Records a (device key, nonce) pair; false when it was seen before (a replay).
pub async fn remember_nonce(
    conn: &impl ConnectionTrait,
    nonce_key: String,
    expires_at: i64,
) -> Result<bool, DbErr> {
    let result = login_nonce::ActiveModel {
        nonce_key: Set(nonce_key),
        expires_at: Set(expires_at),
    }
    .insert(conn)
    .await;
    match result {
        Ok(_) => Ok(true),
        Err(err) if is_unique_violation(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

pub struct NewRefreshToken<'a> {
    pub token_hash: String,
    pub family_id: &'a str,
    pub user_id: &'a str,
    pub device_id: &'a str,
    pub expires_at_ms: i64,
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    token: NewRefreshToken<'_>,
    now_ms: i64,
) -> Result<(), DbErr> {
    refresh_token::ActiveModel {
        token_hash: Set(token.token_hash),
        family_id: Set(token.family_id.to_owned()),
        user_id: Set(token.user_id.to_owned()),
        device_id: Set(token.device_id.to_owned()),
        created_at: Set(now_ms),
        expires_at: Set(token.expires_at_ms),
        used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(conn)
    .await
    .map(|_| ())
}

/// What presenting a refresh token found.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// Valid and now spent: issue the next one in `family_id`.
    Fresh {
        family_id: String,
        user_id: String,
        device_id: String,
    },
    Unknown,
    Expired,
    Revoked,
    /// Already spent: someone holds a copy. The chain has been revoked.
    Reused,
}

/// Who a refresh token belongs to, if it exists.
pub async fn holder(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<(String, String)>, DbErr> {
    Ok(refresh_token::Entity::find_by_id(token_hash)
        .one(conn)
        .await?
        .map(|row| (row.user_id, row.device_id)))
}

/// Spends a refresh token atomically: of two concurrent uses, exactly one is `Fresh`.
pub async fn spend(
    conn: &impl ConnectionTrait,
    token_hash: &str,
    now_ms: i64,
) -> Result<Presented, DbErr> {
    let Some(row) = refresh_token::Entity::find_by_id(token_hash)
        .one(conn)
        .await?
    else {
        return Ok(Presented::Unknown);
    };
    if row.revoked_at.is_some() {
        return Ok(Presented::Revoked);
    }
    if row.expires_at <= now_ms {
        return Ok(Presented::Expired);
    }
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, now_ms.into())
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .filter(refresh_token::Column::UsedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected;
    if spent == 1 {
        return Ok(Presented::Fresh {
            family_id: row.family_id,
            user_id: row.user_id,
            device_id: row.device_id,
        });
    }
    revoke_family(conn, &row.family_id, now_ms).await?;
    Ok(Presented::Reused)
}

pub async fn revoke_family(
    conn: &impl ConnectionTrait,
    family_id: &str,
    now_ms: i64,
) -> Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, now_ms.into())
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await
        .map(|_| ())
}

/// The family of a token, to end a session on logout.
pub async fn family_of(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<String>, DbErr> {
    Ok(refresh_token::Entity::find_by_id(token_hash)
        .one(conn)
        .await?
        .map(|row| row.family_id))
}

pub async fn revoke_device(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
    now_ms: i64,
) -> Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, now_ms.into())
        .filter(refresh_token::Column::UserId.eq(user_id))
        .filter(refresh_token::Column::DeviceId.eq(device_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await
        .map(|_| ())
}
