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
            expires_at: m.expires_at,
        }))
}

fn columns(side: Side) -> (mailbox::Column, mailbox::Column) {
    match side {
        Side::Initiator => (
            mailbox::Column::InitiatorPayload,
            mailbox::Column::InitiatorPayloadRead,
        ),
        Side::Joiner => (
            mailbox::Column::JoinerPayload,
            mailbox::Column::JoinerPayloadRead,
        ),
    }
}

/// Posts `side`'s payload; false when that side had already posted.
pub async fn post(
    conn: &impl ConnectionTrait,
    session_id: &str,
    side: Side,
    payload: Vec<u8>,
) -> Result<bool, DbErr> {
    let (payload_column, read_column) = columns(side);
    let updated = mailbox::Entity::update_many()
        .col_expr(payload_column, payload.into())
        .filter(mailbox::Column::SessionId.eq(session_id))
        .filter(payload_column.is_null())
        .filter(read_column.eq(false))
        .exec(conn)
        .await?
        .rows_affected;
    Ok(updated == 1)
}

/// Takes the payload the other side posted, if any. A payload is handed out once: of several
/// concurrent readers exactly one gets it. The mailbox is deleted once both payloads were taken.
pub async fn take(
    conn: &impl ConnectionTrait,
    session_id: &str,
    reader: Side,
    now_ms: i64,
) -> Result<Option<Vec<u8>>, DbErr> {
    let other = match reader {
        Side::Initiator => Side::Joiner,
        Side::Joiner => Side::Initiator,
    };
    let (payload_column, read_column) = columns(other);
    let Some(row) = mailbox::Entity::find_by_id(session_id)
        .filter(mailbox::Column::ExpiresAt.gt(now_ms))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let data = match other {
        Side::Initiator => row.initiator_payload,
        Side::Joiner => row.joiner_payload,
    };
    let Some(data) = data else {
        return Ok(None);
    };
    let taken = mailbox::Entity::update_many()
        .col_expr(payload_column, Option::<Vec<u8>>::None.into())
        .col_expr(read_column, true.into())
        .filter(mailbox::Column::SessionId.eq(session_id))
        .filter(payload_column.is_not_null())
        .filter(read_column.eq(false))
        .exec(conn)
        .await?
        .rows_affected;
    if taken != 1 {
        return Ok(None);
    }
    mailbox::Entity::delete_many()
        .filter(mailbox::Column::SessionId.eq(session_id))
        .filter(mailbox::Column::JoinerPayloadRead.eq(true))
        .filter(mailbox::Column::InitiatorPayloadRead.eq(true))
        .exec(conn)
        .await?;
    Ok(Some(data))
}
