//! MENTION_EVERYONE messages being pushed one page of members at a time. Each page's pushes
//! and the cursor move in one transaction, so a crash repeats nothing and skips nobody.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait, sea_query::OnConflict,
};

use super::entity::fanout::{ActiveModel, Column, Entity};

pub use super::entity::fanout::Model as Fanout;

/// Longer than one page takes (a guild call and one transaction); after each page the lease is
/// given back, so this only matters when a replica dies mid-page.
const LEASE_MS: i64 = 60_000;

/// Starts a fan-out; false when this message has one already (a redelivered event).
pub async fn start(conn: &impl ConnectionTrait, f: Fanout) -> Result<bool, DbErr> {
    let inserted = Entity::insert(ActiveModel {
        message_id: Set(f.message_id),
        guild_id: Set(f.guild_id),
        channel_id: Set(f.channel_id),
        author_id: Set(f.author_id),
        mentioned: Set(f.mentioned),
        sent_at: Set(f.sent_at),
        after_user_id: Set(f.after_user_id),
        next_attempt_at: Set(f.next_attempt_at),
        lease_until: Set(None),
        lease_token: Set(None),
        created_at: Set(f.created_at),
    })
    .on_conflict(
        OnConflict::column(Column::MessageId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}

/// Leases the oldest due fan-out to the caller under `token` (replicas skip each other's).
pub async fn claim(
    db: &DatabaseConnection,
    now: i64,
    token: &str,
) -> Result<Option<Fanout>, DbErr> {
    let txn = db.begin().await?;
    let mut due = Entity::find()
        .filter(Column::NextAttemptAt.lte(now))
        .filter(
            Condition::any()
                .add(Column::LeaseUntil.is_null())
                .add(Column::LeaseUntil.lt(now)),
        )
        .order_by_asc(Column::NextAttemptAt);
    if mzchat_platform::db::supports_row_locks(&txn) {
        due = due.lock_with_behavior(
            sea_orm::sea_query::LockType::Update,
            sea_orm::sea_query::LockBehavior::SkipLocked,
        );
    }
    let Some(mut row) = due.one(&txn).await? else {
        return Ok(None);
    };
    Entity::update_many()
        .col_expr(Column::LeaseUntil, (now + LEASE_MS).into())
        .col_expr(Column::LeaseToken, token.into())
        .filter(Column::MessageId.eq(&row.message_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    row.lease_token = Some(token.to_owned());
    Ok(Some(row))
}

/// Moves the cursor past a page and gives the fan-out back, due at `now` behind the others (in
/// the page's transaction), or ends it after the last page; false when the lease was lost (the
/// transaction must then roll back).
pub async fn advance(
    conn: &impl ConnectionTrait,
    message_id: &str,
    token: &str,
    next_after_user_id: Option<&str>,
    now: i64,
) -> Result<bool, DbErr> {
    let held = |q: sea_orm::Condition| {
        q.add(Column::MessageId.eq(message_id))
            .add(Column::LeaseToken.eq(token))
    };
    let affected = match next_after_user_id {
        Some(after) => {
            Entity::update_many()
                .col_expr(Column::AfterUserId, after.into())
                .col_expr(Column::NextAttemptAt, now.into())
                .col_expr(Column::LeaseUntil, Option::<i64>::None.into())
                .col_expr(Column::LeaseToken, Option::<String>::None.into())
                .filter(held(Condition::all()))
                .exec(conn)
                .await?
                .rows_affected
        }
        None => {
            Entity::delete_many()
                .filter(held(Condition::all()))
                .exec(conn)
                .await?
                .rows_affected
        }
    };
    Ok(affected == 1)
}

/// Tries the fan-out again at `at` (the guild service could not answer).
pub async fn defer(
    conn: &impl ConnectionTrait,
    message_id: &str,
    token: &str,
    at: i64,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::NextAttemptAt, at.into())
        .col_expr(Column::LeaseUntil, Option::<i64>::None.into())
        .col_expr(Column::LeaseToken, Option::<String>::None.into())
        .filter(Column::MessageId.eq(message_id))
        .filter(Column::LeaseToken.eq(token))
        .exec(conn)
        .await?;
    Ok(())
}
