use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    sea_query::OnConflict,
};

use super::entity::{device, revocation};
use crate::domain::{
    account::Device,
    login::{VerifiedCertificate, VerifiedRevocation},
};

fn to_domain(model: device::Model) -> Device {
    Device {
        device_id: model.device_id,
        public_key: model.device_public_key,
        certificate_expires_at: model.certificate_expires_at,
        first_seen_at: model.first_seen_at,
        last_seen_at: model.last_seen_at,
        revoked_at: model.revoked_at,
    }
}

/// Records the device's current certificate; returns true when the device is new here.
pub async fn record_certificate(
    conn: &impl ConnectionTrait,
    cert: &VerifiedCertificate,
    now_ms: i64,
) -> Result<bool, DbErr> {
    let existing = device::Entity::find_by_id((cert.user_id.clone(), cert.device_id.clone()))
        .one(conn)
        .await?;
    let is_new = existing.is_none();
    let model = device::ActiveModel {
        user_id: Set(cert.user_id.clone()),
        device_id: Set(cert.device_id.clone()),
        device_public_key: Set(cert.device_key.to_bytes().to_vec()),
        certificate_body: Set(cert.statement.body.clone()),
        certificate_signature: Set(cert.statement.signature.clone()),
        certificate_expires_at: Set(cert.expires_at),
        first_seen_at: Set(now_ms),
        last_seen_at: Set(now_ms),
        revoked_at: Set(None),
    };
    device::Entity::insert(model)
        .on_conflict(
            OnConflict::columns([device::Column::UserId, device::Column::DeviceId])
                .update_columns([
                    device::Column::DevicePublicKey,
                    device::Column::CertificateBody,
                    device::Column::CertificateSignature,
                    device::Column::CertificateExpiresAt,
                    device::Column::LastSeenAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(is_new)
}

pub async fn find(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
) -> Result<Option<Device>, DbErr> {
    Ok(
        device::Entity::find_by_id((user_id.to_owned(), device_id.to_owned()))
            .one(conn)
            .await?
            .map(to_domain),
    )
}

pub async fn touch(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
    now_ms: i64,
) -> Result<(), DbErr> {
    device::Entity::update_many()
        .col_expr(device::Column::LastSeenAt, now_ms.into())
        .filter(device::Column::UserId.eq(user_id))
        .filter(device::Column::DeviceId.eq(device_id))
        .exec(conn)
        .await
        .map(|_| ())
}

pub async fn list(conn: &impl ConnectionTrait, user_id: &str) -> Result<Vec<Device>, DbErr> {
    Ok(device::Entity::find()
        .filter(device::Column::UserId.eq(user_id))
        .order_by_asc(device::Column::FirstSeenAt)
        .all(conn)
        .await?
        .into_iter()
        .map(to_domain)
        .collect())
}

/// When the device was revoked (seconds since the epoch), if it was.
pub async fn revoked_at(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
) -> Result<Option<i64>, DbErr> {
    Ok(
        revocation::Entity::find_by_id((user_id.to_owned(), device_id.to_owned()))
            .one(conn)
            .await?
            .map(|r| r.revoked_at),
    )
}

/// Revocations stored for `user_id`.
pub async fn revocation_count(conn: &impl ConnectionTrait, user_id: &str) -> Result<u64, DbErr> {
    revocation::Entity::find()
        .filter(revocation::Column::UserId.eq(user_id))
        .count(conn)
        .await
}

/// Stores a revocation (the first one received wins) and marks the device revoked; returns
/// false when the device was already revoked.
pub async fn revoke(
    conn: &impl ConnectionTrait,
    revocation: &VerifiedRevocation,
    now_ms: i64,
) -> Result<bool, DbErr> {
    let model = revocation::ActiveModel {
        user_id: Set(revocation.user_id.clone()),
        device_id: Set(revocation.device_id.clone()),
        revoked_at: Set(revocation.revoked_at),
        statement_body: Set(revocation.statement.body.clone()),
        statement_signature: Set(revocation.statement.signature.clone()),
        received_at: Set(now_ms),
    };
    let inserted = revocation::Entity::insert(model)
        .on_conflict(
            OnConflict::columns([revocation::Column::UserId, revocation::Column::DeviceId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    device::Entity::update_many()
        .col_expr(device::Column::RevokedAt, revocation.revoked_at.into())
        .filter(device::Column::UserId.eq(revocation.user_id.as_str()))
        .filter(device::Column::DeviceId.eq(revocation.device_id.as_str()))
        .exec(conn)
        .await?;
    Ok(true)
}
