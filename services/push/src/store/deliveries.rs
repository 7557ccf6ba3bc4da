//! The delivery queue and log: one row per push to one device, kept after it ends (delivered or
//! dropped, with the reason).

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait, sea_query::OnConflict,
};

use super::{
    entity::delivery::{ActiveModel, Column, Entity},
    registrations,
};

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
        lease_token: Set(None),
        expires_at: Set(d.expires_at),
        last_result: Set(String::new()),
        created_at: Set(d.created_at),
        updated_at: Set(d.created_at),
        transport: Set(d.transport.clone()),
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

/// Queues the push about `message_id` to every device of the user that has a route; returns how
/// many were new.
pub async fn enqueue_for_user(
    conn: &impl ConnectionTrait,
    message_id: &str,
    user_id: &str,
    payload: &[u8],
    now: i64,
    ttl_ms: i64,
) -> Result<usize, DbErr> {
    let mut queued = 0;
    for route in registrations::routes_of(conn, user_id).await? {
        let delivery = Delivery {
            id: uuid::Uuid::now_v7().to_string(),
            message_id: message_id.to_owned(),
            user_id: user_id.to_owned(),
            device_id: route.device_id,
            endpoint_url: route.address,
            transport: route.transport.to_owned(),
            p256dh: route.p256dh,
            auth: route.auth,
            payload: payload.to_vec(),
            state: PENDING.into(),
            attempts: 0,
            next_attempt_at: now,
            lease_until: None,
            lease_token: None,
            expires_at: now + ttl_ms,
            last_result: String::new(),
            created_at: now,
            updated_at: now,
        };
        queued += usize::from(enqueue(conn, &delivery).await?);
    }
    Ok(queued)
}

/// Takes up to `limit` due pushes, leased to the caller under `token` (replicas skip each
/// other's rows).
pub async fn claim_due(
    db: &DatabaseConnection,
    now: i64,
    limit: u64,
    token: &str,
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
            .col_expr(Column::LeaseToken, token.into())
            .filter(Column::Id.is_in(rows.iter().map(|r| r.id.clone())))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(rows)
}

/// How an attempt ended.
pub struct Outcome<'a> {
    pub state: &'a str,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub result: &'a str,
}

/// Records an attempt's outcome if `token` still holds the lease (else another replica took
/// the push and nothing is written). A finished push forgets the device's keys.
pub async fn settle(
    conn: &impl ConnectionTrait,
    id: &str,
    token: &str,
    outcome: &Outcome<'_>,
    now: i64,
) -> Result<bool, DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::State, outcome.state.into())
        .col_expr(Column::Attempts, outcome.attempts.into())
        .col_expr(Column::NextAttemptAt, outcome.next_attempt_at.into())
        .col_expr(Column::LeaseUntil, Option::<i64>::None.into())
        .col_expr(Column::LeaseToken, Option::<String>::None.into())
        .col_expr(
            Column::LastResult,
            outcome.result.chars().take(300).collect::<String>().into(),
        )
        .col_expr(Column::UpdatedAt, now.into())
        .filter(Column::Id.eq(id))
        .filter(Column::LeaseToken.eq(token))
        .filter(Column::State.eq(PENDING));
    if outcome.state != PENDING {
        update = update
            .col_expr(Column::P256dh, Option::<Vec<u8>>::None.into())
            .col_expr(Column::Auth, Option::<Vec<u8>>::None.into());
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// Forgets finished pushes last touched before `before`.
pub async fn prune(conn: &impl ConnectionTrait, before: i64) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::State.ne(PENDING))
        .filter(Column::UpdatedAt.lt(before))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Drops the pending pushes of a revoked device.
pub async fn drop_device(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::DeviceId.eq(device_id))
        .filter(Column::State.eq(PENDING))
        .exec(conn)
        .await?
        .rows_affected)
}
