//! Pairing mailboxes (PROTOCOL.md section 3), kept in the database so both sides may reach
//! different replicas.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::entity::mailbox;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Initiator,
    Joiner,
}

#[derive(Debug, Clone)]
pub struct Mailbox {
    pub initiator_user_id: String,
    pub joiner_payload: Option<Vec<u8>>,
    pub initiator_payload: Option<Vec<u8>>,
    pub expires_at: i64,
}

pub async fn create(
    conn: &impl ConnectionTrait,
    session_id: &str,
    initiator: &str,
    now_ms: i64,
    expires_at: i64,
) -> Result<(), DbErr> {
    mailbox::ActiveModel {
        session_id: Set(session_id.to_owned()),
        initiator_user_id: Set(initiator.to_owned()),
        joiner_payload: Set(None),
        initiator_payload: Set(None),
        joiner_payload_read: Set(false),
        initiator_payload_read: Set(false),
        created_at: Set(now_ms),
        expires_at: Set(expires_at),
    }
    .insert(conn)
    .await
    .map(|_| ())
}

/// A live (unexpired) mailbox.
pub async fn find(
    conn: &impl ConnectionTrait,
    session_id: &str,
    now_ms: i64,
) -> Result<Option<Mailbox>, DbErr> {
    Ok(mailbox::Entity::find_by_id(session_id)
        .filter(mailbox::Column::ExpiresAt.gt(now_ms))
        .one(conn)
        .await?
        .map(|m| Mailbox {
            initiator_user_id: m.initiator_user_id,
            joiner_payload: m.joiner_payload,
            initiator_payload: m.initiator_payload,
            expires_at: m.expires_at,
        }))
}

/// Posts `side`'s payload; false when that side had already posted.
pub async fn post(
    conn: &impl ConnectionTrait,
    session_id: &str,
    side: Side,
    payload: Vec<u8>,
) -> Result<bool, DbErr> {
    let column = match side {
        Side::Initiator => mailbox::Column::InitiatorPayload,
        Side::Joiner => mailbox::Column::JoinerPayload,
    };
    let updated = mailbox::Entity::update_many()
        .col_expr(column, payload.into())
        .filter(mailbox::Column::SessionId.eq(session_id))
        .filter(column.is_null())
        .exec(conn)
        .await?
        .rows_affected;
    Ok(updated == 1)
}

/// Marks the payload `reader` received as read, and deletes the mailbox once both were read.
pub async fn mark_read(
    conn: &impl ConnectionTrait,
    session_id: &str,
    reader: Side,
) -> Result<(), DbErr> {
    let column = match reader {
        Side::Initiator => mailbox::Column::JoinerPayloadRead,
        Side::Joiner => mailbox::Column::InitiatorPayloadRead,
    };
    mailbox::Entity::update_many()
        .col_expr(column, true.into())
        .filter(mailbox::Column::SessionId.eq(session_id))
        .exec(conn)
        .await?;
    mailbox::Entity::delete_many()
        .filter(mailbox::Column::SessionId.eq(session_id))
        .filter(mailbox::Column::JoinerPayloadRead.eq(true))
        .filter(mailbox::Column::InitiatorPayloadRead.eq(true))
        .exec(conn)
        .await
        .map(|_| ())
}
