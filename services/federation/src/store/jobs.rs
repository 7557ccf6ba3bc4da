//! The job log. A job that cannot go now waits here (with its next attempt time) instead of in
//! the bus, so a down destination's backlog never holds up anyone else's jobs; finished jobs stay
//! a week so a redelivered copy is recognised and dropped.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait, sea_query::OnConflict,
};

use super::entity::job::{ActiveModel, Column, Entity, Model};

pub const WAITING: &str = "waiting";
pub const DONE: &str = "done";
pub const DEAD: &str = "dead";
/// How long a replica may hold a claimed job before another may take it: longer than any call
/// may take (mzchatd caps the call timeout at 20 s), short enough that a killed replica's jobs
/// are soon taken over.
const LEASE_MS: i64 = 30_000;

/// What the log knows of a job id.
pub async fn state(db: &impl ConnectionTrait, id: &str) -> Result<Option<String>, DbErr> {
    Ok(Entity::find_by_id(id).one(db).await?.map(|row| row.state))
}

/// The fields every write of a job row carries.
pub struct JobRecord<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub destination: &'a str,
    pub payload: &'a [u8],
    pub attempts: i32,
    pub expires_at: i64,
}

async fn upsert(
    db: &impl ConnectionTrait,
    job: &JobRecord<'_>,
    state: &str,
    next_attempt_at: i64,
    error: &str,
    now: i64,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        id: Set(job.id.to_owned()),
        kind: Set(job.kind.to_owned()),
        destination: Set(job.destination.to_owned()),
        payload: Set(job.payload.to_vec()),
        state: Set(state.to_owned()),
        attempts: Set(job.attempts),
        expires_at: Set(job.expires_at),
        next_attempt_at: Set(next_attempt_at),
        lease_until: Set(None),
        last_error: Set(error.chars().take(500).collect()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(Column::Id)
            .update_columns([
                Column::Payload,
                Column::State,
                Column::Attempts,
                Column::ExpiresAt,
                Column::NextAttemptAt,
                Column::LeaseUntil,
                Column::LastError,
                Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Keeps the job for another attempt at `next_attempt_at`.
pub async fn park(
    db: &impl ConnectionTrait,
    job: &JobRecord<'_>,
    next_attempt_at: i64,
    error: &str,
    now: i64,
) -> Result<(), DbErr> {
    upsert(db, job, WAITING, next_attempt_at, error, now).await
}

pub async fn finish(db: &impl ConnectionTrait, job: &JobRecord<'_>, now: i64) -> Result<(), DbErr> {
    upsert(db, job, DONE, now, "", now).await
}

pub async fn mark_dead(
    db: &impl ConnectionTrait,
    job: &JobRecord<'_>,
    error: &str,
    now: i64,
) -> Result<(), DbErr> {
    upsert(db, job, DEAD, now, error, now).await
}

/// Takes up to `limit` waiting jobs that are due, leasing them to the caller. Replicas skip
/// each other's locked rows (PostgreSQL), so they never take the same job.
pub async fn claim_due(db: &DatabaseConnection, now: i64, limit: u64) -> Result<Vec<Model>, DbErr> {
    let txn = db.begin().await?;
    let mut due = Entity::find()
        .filter(Column::State.eq(WAITING))
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

/// A destination answered again: its waiting jobs are due now.
pub async fn wake_destination(
    db: &impl ConnectionTrait,
    origin: &str,
    now: i64,
) -> Result<u64, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::NextAttemptAt, now.into())
        .filter(Column::Destination.eq(origin))
        .filter(Column::State.eq(WAITING))
        .filter(Column::NextAttemptAt.gt(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Forgets finished jobs older than `before`.
pub async fn prune(db: &impl ConnectionTrait, before: i64) -> Result<u64, DbErr> {
    let result = Entity::delete_many()
        .filter(Column::State.ne(WAITING))
        .filter(Column::UpdatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
