//! Jobs that will not be tried again unless an operator retries them.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::OnConflict,
};

use super::entity::dead_letter::{ActiveModel, Column, Entity, Model};

pub async fn insert(
    db: &impl ConnectionTrait,
    job_id: &str,
    destination: &str,
    payload: &[u8],
    attempts: i32,
    error: &str,
    now: i64,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        job_id: Set(job_id.to_owned()),
        destination: Set(destination.to_owned()),
        payload: Set(payload.to_vec()),
        attempts: Set(attempts),
        last_error: Set(error.chars().take(500).collect()),
        dead_at: Set(now),
    })
    .on_conflict(OnConflict::column(Column::JobId).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Newest first, before the id `before`.
pub async fn page(
    db: &impl ConnectionTrait,
    destination: Option<&str>,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut query = Entity::find().order_by_desc(Column::Id).limit(limit);
    if let Some(destination) = destination {
        query = query.filter(Column::Destination.eq(destination));
    }
    if let Some(before) = before {
        query = query.filter(Column::Id.lt(before));
    }
    query.all(db).await
}

/// Removes and returns a dead letter.
pub async fn take(db: &impl ConnectionTrait, id: &str) -> Result<Option<Model>, DbErr> {
    let Some(row) = Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let deleted = Entity::delete_by_id(id).exec(db).await?;
    Ok((deleted.rows_affected == 1).then_some(row))
}
