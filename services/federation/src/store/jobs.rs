//! The job log. Every job is recorded here before its bus message is acknowledged, under a lease
//! held by the replica running it; a job that cannot go now waits here (with its next attempt
//! time) instead of in the bus, so a down destination's backlog never holds up anyone else's
//! jobs. Outcomes are written only by the lease holder (its token fences out a replica whose
//! lease ran out), and finished jobs stay a week so a redelivered copy is recognised.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait, sea_query::OnConflict,
};

use super::entity::job::{ActiveModel, Column, Entity, Model};

pub const WAITING: &str = "waiting";
pub const DONE: &str = "done";
pub const DEAD: &str = "dead";
/// How long a replica holds a job it runs: beyond queueing for a call slot (at most 10 s),
/// signing (at most 5 s) and the call (at most 20 s), and short enough that a dead replica's
/// jobs are soon taken over.
pub const LEASE_MS: i64 = 45_000;

/// What the log knows of a job id.
#[cfg(test)]
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

/// A fresh lease token.
pub fn lease_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Records a job arriving from the bus, leased to the caller. False when the log already has
/// it (a redelivery): the caller must not run it.
pub async fn begin(
    db: &impl ConnectionTrait,
    job: &JobRecord<'_>,
    token: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let inserted = Entity::insert(ActiveModel {
        id: Set(job.id.to_owned()),
        kind: Set(job.kind.to_owned()),
        destination: Set(job.destination.to_owned()),
        payload: Set(job.payload.to_vec()),
        state: Set(WAITING.to_owned()),
        attempts: Set(job.attempts),
        expires_at: Set(job.expires_at),
        next_attempt_at: Set(now),
        lease_until: Set(Some(now + LEASE_MS)),
        lease_token: Set(Some(token.to_owned())),
        last_error: Set(String::new()),
        updated_at: Set(now),
    })
    .on_conflict(OnConflict::column(Column::Id).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(inserted == 1)
}

/// How a run of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    Done,
    /// Try again at `next_attempt_at`.
    Waiting {
        next_attempt_at: i64,
        error: &'a str,
    },
    Dead {
        error: &'a str,
    },
}

/// Writes the outcome of a run, releasing the lease. False when the caller no longer holds it
/// (it ran out and another replica took the job): then nothing is written, and the caller must
/// discard its results.
pub async fn settle(
    db: &impl ConnectionTrait,
    job: &JobRecord<'_>,
    token: &str,
    outcome: Outcome<'_>,
    now: i64,
) -> Result<bool, DbErr> {
    let (state, next, error) = match outcome {
        Outcome::Done => (DONE, now, ""),
        Outcome::Waiting {
            next_attempt_at,
            error,
        } => (WAITING, next_attempt_at, error),
        Outcome::Dead { error } => (DEAD, now, error),
    };
    let error: String = error.chars().take(500).collect();
    let updated = Entity::update_many()
        .col_expr(Column::State, state.into())
        .col_expr(Column::Attempts, job.attempts.into())
        .col_expr(Column::NextAttemptAt, next.into())
        .col_expr(Column::LastError, error.into())
        .col_expr(Column::LeaseUntil, Option::<i64>::None.into())
        .col_expr(Column::LeaseToken, Option::<String>::None.into())
        .col_expr(Column::UpdatedAt, now.into())
        .filter(Column::Id.eq(job.id))
        .filter(Column::LeaseToken.eq(token))
        .filter(Column::State.eq(WAITING))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Puts a job back to wait from now, with no lease (an operator's retry of a dead letter).
pub async fn requeue(
    db: &impl ConnectionTrait,
    job: &JobRecord<'_>,
    now: i64,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        id: Set(job.id.to_owned()),
        kind: Set(job.kind.to_owned()),
        destination: Set(job.destination.to_owned()),
        payload: Set(job.payload.to_vec()),
        state: Set(WAITING.to_owned()),
        attempts: Set(job.attempts),
        expires_at: Set(job.expires_at),
        next_attempt_at: Set(now),
        lease_until: Set(None),
        lease_token: Set(None),
        last_error: Set("retried by an operator".to_owned()),
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
                Column::LeaseToken,
                Column::LastError,
                Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Takes up to `limit` waiting jobs that are due, leasing them under `token`. Replicas skip
/// each other's locked rows (PostgreSQL), so they never take the same job.
pub async fn claim_due(
    db: &DatabaseConnection,
    now: i64,
    limit: u64,
    token: &str,
) -> Result<Vec<Model>, DbErr> {
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
            .col_expr(Column::LeaseToken, token.into())
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
