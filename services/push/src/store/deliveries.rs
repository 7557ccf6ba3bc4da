//! The delivery queue and log: one row per push to one device, kept after it ends (delivered or
//! dropped, with the reason).

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait, sea_query::OnConflict,
};

use super::entity::delivery::{ActiveModel, Column, Entity};

pub use super::entity::delivery::Model as Delivery;

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const DROPPED: &str = "dropped";
/// Longer than one delivery may take (5 s).
const LEASE_MS: i64 = 30_000;

/// Queues a push; false when this message already queued one for the device.
pub async fn enqueue(conn: &impl ConnectionTrait, d: &Delivery) -> Result<bool, DbErr> {
    let inserted = Entity::insert(ActiveModel {
        id: Set(d.id.clone()),
        message_id: Set(d.message_id.clone()),
        user_id: Set(d.user_id.clone()),
        device_id: Set(d.device_id.clone()),
        endpoint_url: Set(d.endpoint_url.clone()),
        p256dh: Set(d.p256dh.clone()),
        auth: Set(d.auth.clone()),
        payload: Set(d.payload.clone()),
        state: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(d.next_attempt_at),
        lease_until: Set(None),
        expires_at: Set(d.expires_at),
        last_result: Set(String::new()),
        created_at: Set(d.created_at),
        updated_at: Set(d.created_at),
    })
    .on_conflict(
        OnConflict::columns([Column::MessageId, Column::UserId, Column::DeviceId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

/// Takes up to `limit` due pushes, leased to the caller (replicas skip each other's rows).
pub async fn claim_due(
    db: &DatabaseConnection,
    now: i64,
    limit: u64,
) -> Result<Vec<Delivery>, DbErr> {
    let txn = db.begin().await?;
    let mut due = Entity::find()
        .filter(Column::State.eq(PENDING))
        .filter(Column::NextAttemptAt.lte(now))
        .filter(
            Condition::any()
                .add(Column::LeaseUntil.is_null())
                .add(Column::LeaseUntil.lt(now)),
        )
        .order_by_asc(Column::NextAttemptAt)
        .limit(limit);
    if mzchat_platform::db::supports_row_locks(&txn) {
        due = due.lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        );
    }
    let rows = due.all(&txn).await?;
    if !rows.is_empty() {
        Entity::update_many()
            .col_expr(Column::LeaseUntil, (now + LEASE_MS).into())
            .filter(Column::Id.is_in(rows.iter().map(|r| r.id.clone())))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(rows)
}

/// Records how an attempt ended: a final state, or pending again at `next_attempt_at`.
pub async fn settle(
    conn: &impl ConnectionTrait,
    id: &str,
    state: &str,
    attempts: i32,
    next_attempt_at: i64,
    result: &str,
    now: i64,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::State, state.into())
        .col_expr(Column::Attempts, attempts.into())
        .col_expr(Column::NextAttemptAt, next_attempt_at.into())
        .col_expr(Column::LeaseUntil, Option::<i64>::None.into())
        .col_expr(
            Column::LastResult,
            result.chars().take(300).collect::<String>().into(),
        )
        .col_expr(Column::UpdatedAt, now.into())
        .filter(Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}
