//! Per-destination delivery state, shared by every replica through the database. A failure puts
//! the destination into backoff (1 s doubling to 1 h, with jitter); while it lasts, jobs for it
//! wait and exactly one replica at a time may probe it once the backoff ends.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait, sea_query::OnConflict,
};

use super::entity::destination::{self, ActiveModel, Column, Entity, Model};

/// Consecutive failures after which a destination counts as down (only probed).
pub const DOWN_AFTER: i32 = 5;
const BASE_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 3_600_000;
/// How long a probe may take before another replica may probe again.
pub const PROBE_LEASE_MS: i64 = 30_000;

/// Whether a call to a destination may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead; `probe` when this call tests a destination in backoff.
    Go { probe: bool },
    /// Not before this time (ms).
    Wait(i64),
}

/// Backoff after `failures` consecutive failures, before jitter.
pub fn backoff_ms(failures: i32) -> i64 {
    let exponent = failures.clamp(1, 32) as u32 - 1;
    BASE_BACKOFF_MS
        .saturating_mul(1_i64.checked_shl(exponent).unwrap_or(i64::MAX))
        .min(MAX_BACKOFF_MS)
}

/// Up to a fifth of `ms` more, so replicas and jobs do not all return at the same instant.
pub fn jitter(ms: i64) -> i64 {
    let mut byte = [0u8; 2];
    let _ = getrandom::getrandom(&mut byte);
    ms + ms / 5 * i64::from(u16::from_le_bytes(byte)) / i64::from(u16::MAX)
}

pub async fn gate(db: &impl ConnectionTrait, origin: &str, now: i64) -> Result<Gate, DbErr> {
    let Some(row) = Entity::find_by_id(origin).one(db).await? else {
        return Ok(Gate::Go { probe: false });
    };
    let Some(next) = row.next_attempt_at else {
        return Ok(Gate::Go { probe: false });
    };
    if next > now {
        return Ok(Gate::Wait(next));
    }
    // Backoff over: the replica that moves next_attempt_at first probes; the others wait.
    let claimed = Entity::update_many()
        .col_expr(Column::NextAttemptAt, (now + PROBE_LEASE_MS).into())
        .filter(Column::Origin.eq(origin))
        .filter(Column::NextAttemptAt.eq(next))
        .exec(db)
        .await?;
    Ok(if claimed.rows_affected == 1 {
        Gate::Go { probe: true }
    } else {
        Gate::Wait(now + PROBE_LEASE_MS)
    })
}

/// Records an answer from `origin`. Returns whether it was unhealthy before.
pub async fn succeeded(db: &impl ConnectionTrait, origin: &str, now: i64) -> Result<bool, DbErr> {
    let before = Entity::find_by_id(origin).one(db).await?;
    let was_unhealthy = before.as_ref().is_some_and(|r| r.consecutive_failures > 0);
    Entity::insert(ActiveModel {
        origin: Set(origin.to_owned()),
        consecutive_failures: Set(0),
        last_success_at: Set(Some(now)),
        next_attempt_at: Set(None),
        last_error: Set(String::new()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(Column::Origin)
            .update_columns([
                Column::ConsecutiveFailures,
                Column::LastSuccessAt,
                Column::NextAttemptAt,
                Column::LastError,
                Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(was_unhealthy)
}

/// Records a failed call and returns when the destination may be called again. Calls that were
/// already in flight when an earlier failure started the backoff do not lengthen it; a failed
/// probe does.
pub async fn failed(
    db: &DatabaseConnection,
    origin: &str,
    error: &str,
    probe: bool,
    now: i64,
) -> Result<i64, DbErr> {
    let txn = db.begin().await?;
    Entity::insert(ActiveModel {
        origin: Set(origin.to_owned()),
        consecutive_failures: Set(0),
        last_success_at: Set(None),
        next_attempt_at: Set(None),
        last_error: Set(String::new()),
        updated_at: Set(now),
    })
    .on_conflict(OnConflict::column(Column::Origin).do_nothing().to_owned())
    .exec_without_returning(&txn)
    .await?;
    let mut find = Entity::find_by_id(origin);
    if mzchat_platform::db::supports_row_locks(&txn) {
        find = find.lock_exclusive();
    }
    let row = find
        .one(&txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(origin.to_owned()))?;
    if let Some(next) = row.next_attempt_at.filter(|&next| next > now && !probe) {
        txn.commit().await?;
        return Ok(next);
    }
    let failures = row.consecutive_failures.saturating_add(1);
    let next = now + jitter(backoff_ms(failures));
    let mut active: ActiveModel = row.into();
    active.consecutive_failures = Set(failures);
    active.next_attempt_at = Set(Some(next));
    active.last_error = Set(error.chars().take(500).collect());
    active.updated_at = Set(now);
    active.update(&txn).await?;
    txn.commit().await?;
    if failures == DOWN_AFTER {
        tracing::warn!(%origin, %error, "destination marked down; probing only");
    }
    Ok(next)
}

/// Destinations by origin, after `after`.
pub async fn page(
    db: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut query = Entity::find().order_by_asc(Column::Origin).limit(limit);
    if let Some(after) = after {
        query = query.filter(Column::Origin.gt(after));
    }
    query.all(db).await
}

pub fn health(row: &destination::Model) -> Health {
    match row.consecutive_failures {
        0 => Health::Healthy,
        n if n < DOWN_AFTER => Health::BackingOff,
        _ => Health::Down,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    BackingOff,
    Down,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_an_hour() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(5), 16_000);
        assert_eq!(backoff_ms(12), 2_048_000);
        assert_eq!(backoff_ms(13), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(i32::MAX), MAX_BACKOFF_MS);
    }

    #[test]
    fn jitter_adds_at_most_a_fifth() {
        for _ in 0..100 {
            let j = jitter(10_000);
            assert!((10_000..=12_000).contains(&j), "{j}");
        }
    }
}
