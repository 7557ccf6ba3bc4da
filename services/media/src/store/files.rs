//! Files: complete uploads, addressed by file id.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect, Set};

use super::entity::file;

pub use file::Model as File;

pub async fn insert(conn: &impl ConnectionTrait, f: &File) -> Result<(), DbErr> {
    file::Entity::insert(file::ActiveModel {
        file_id: Set(f.file_id.clone()),
        owner_id: Set(f.owner_id.clone()),
        object_key: Set(f.object_key.clone()),
        content_type: Set(f.content_type.clone()),
        size: Set(f.size),
        file_name: Set(f.file_name.clone()),
        purpose: Set(f.purpose),
        sha256: Set(f.sha256.clone()),
        created_at: Set(f.created_at),
        deleted_at: Set(None),
        purged: Set(false),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// A file that has not been deleted.
pub async fn find_live(conn: &impl ConnectionTrait, file_id: &str) -> Result<Option<File>, DbErr> {
    file::Entity::find_by_id(file_id)
        .filter(file::Column::DeletedAt.is_null())
        .one(conn)
        .await
}

/// Bytes the owner's files take (deleted ones no longer count).
pub async fn used_bytes(conn: &impl ConnectionTrait, owner_id: &str) -> Result<u64, DbErr> {
    let sizes: Vec<i64> = file::Entity::find()
        .select_only()
        .column(file::Column::Size)
        .filter(file::Column::OwnerId.eq(owner_id))
        .filter(file::Column::DeletedAt.is_null())
        .into_tuple()
        .all(conn)
        .await?;
    Ok(sizes.iter().map(|s| u64::try_from(*s).unwrap_or(0)).sum())
}

/// Marks the owner's file deleted; false when there was no such live file of theirs.
pub async fn mark_deleted(
    conn: &impl ConnectionTrait,
    file_id: &str,
    owner_id: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let marked = file::Entity::update_many()
        .col_expr(file::Column::DeletedAt, now.into())
        .filter(file::Column::FileId.eq(file_id))
        .filter(file::Column::OwnerId.eq(owner_id))
        .filter(file::Column::DeletedAt.is_null())
        .exec(conn)
        .await?;
    Ok(marked.rows_affected == 1)
}

/// Deleted files whose bytes are still in the store.
pub async fn unpurged(conn: &impl ConnectionTrait, limit: u64) -> Result<Vec<File>, DbErr> {
    file::Entity::find()
        .filter(file::Column::DeletedAt.is_not_null())
        .filter(file::Column::Purged.eq(false))
        .limit(limit)
        .all(conn)
        .await
}

pub async fn set_purged(conn: &impl ConnectionTrait, file_id: &str) -> Result<(), DbErr> {
    file::Entity::update_many()
        .col_expr(file::Column::Purged, true.into())
        .filter(file::Column::FileId.eq(file_id))
        .exec(conn)
        .await?;
    Ok(())
}
