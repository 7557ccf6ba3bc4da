//! Delegation tokens this server holds for users homed elsewhere: what lets it relay a push to
//! them through their home server.

use mzchat_proto::common::SignedStatement;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set, sea_query::OnConflict};

use super::entity::held_token::{ActiveModel, Column, Entity};

/// A held token: the user's home server and the statement it signed.
pub struct Held {
    pub home_server: String,
    pub token: SignedStatement,
    pub expires_at: i64,
}

pub async fn keep(
    conn: &impl ConnectionTrait,
    user_id: &str,
    held: &Held,
    now_ms: i64,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        user_id: Set(user_id.to_owned()),
        home_server: Set(held.home_server.clone()),
        token_body: Set(held.token.body.clone()),
        token_signature: Set(held.token.signature.clone()),
        expires_at: Set(held.expires_at),
        updated_at: Set(now_ms),
    })
    .on_conflict(
        OnConflict::column(Column::UserId)
            .update_columns([
                Column::HomeServer,
                Column::TokenBody,
                Column::TokenSignature,
                Column::ExpiresAt,
                Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn of_user(conn: &impl ConnectionTrait, user_id: &str) -> Result<Option<Held>, DbErr> {
    Ok(Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .map(|row| Held {
            home_server: row.home_server,
            token: SignedStatement {
                body: row.token_body,
                signature: row.token_signature,
            },
            expires_at: row.expires_at,
        }))
}
