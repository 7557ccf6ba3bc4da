//! Uploads and their chunks. A chunk's row claims its index for one digest before the bytes go
//! to the store, so two writers of different bytes for one index cannot both succeed.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::OnConflict,
};

use super::entity::{chunk, upload};

pub use chunk::Model as Chunk;
pub use upload::Model as Upload;

pub const OPEN: &str = "open";
pub const COMPLETING: &str = "completing";
pub const COMPLETE: &str = "complete";
pub const ABORTED: &str = "aborted";

pub async fn insert(conn: &impl ConnectionTrait, u: &Upload) -> Result<(), DbErr> {
    upload::Entity::insert(upload::ActiveModel {
        id: Set(u.id.clone()),
        owner_id: Set(u.owner_id.clone()),
        file_name: Set(u.file_name.clone()),
        declared_type: Set(u.declared_type.clone()),
        size: Set(u.size),
        chunk_size: Set(u.chunk_size),
        chunk_count: Set(u.chunk_count),
        purpose: Set(u.purpose),
        backend_id: Set(u.backend_id.clone()),
        state: Set(u.state.clone()),
        head: Set(None),
        file_id: Set(None),
        state_at: Set(u.state_at),
        created_at: Set(u.created_at),
        expires_at: Set(u.expires_at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn find(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Upload>, DbErr> {
    upload::Entity::find_by_id(id).one(conn).await
}

/// The owner's unfinished uploads: how many, and their declared bytes.
pub async fn unfinished_of(
    conn: &impl ConnectionTrait,
    owner_id: &str,
) -> Result<(u64, u64), DbErr> {
    let sizes: Vec<i64> = upload::Entity::find()
        .select_only()
        .column(upload::Column::Size)
        .filter(upload::Column::OwnerId.eq(owner_id))
        .filter(upload::Column::State.is_in([OPEN, COMPLETING]))
        .into_tuple()
        .all(conn)
        .await?;
    let bytes = sizes.iter().map(|s| u64::try_from(*s).unwrap_or(0)).sum();
    Ok((sizes.len() as u64, bytes))
}

/// What storing a chunk found.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The index is this writer's.
    New,
    /// The index holds these same bytes already (or is being written with them): a retry.
    Same { stored: bool },
    /// The index holds other bytes.
    Other,
}

pub async fn claim_chunk(
    conn: &impl ConnectionTrait,
    upload_id: &str,
    index: i32,
    sha256: &[u8],
) -> Result<Claim, DbErr> {
    let inserted = chunk::Entity::insert(chunk::ActiveModel {
        upload_id: Set(upload_id.to_owned()),
        chunk_index: Set(index),
        sha256: Set(sha256.to_vec()),
        part_tag: Set(None),
    })
    .on_conflict(
        OnConflict::columns([chunk::Column::UploadId, chunk::Column::ChunkIndex])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let existing = chunk::Entity::find_by_id((upload_id.to_owned(), index))
        .one(conn)
        .await?;
    Ok(match existing {
        Some(c) if c.sha256 == sha256 => Claim::Same {
            stored: c.part_tag.is_some(),
        },
        Some(_) => Claim::Other,
        // Released between the insert and the read: a concurrent writer failed; try again.
        None => Claim::Same { stored: false },
    })
}

/// Records that the bytes of chunk `index` with digest `sha256` are in the store under `tag`;
/// false when the index holds other bytes. Works whether or not a claim row is still there (a
/// concurrent writer of the same bytes may have released it after failing).
pub async fn record_part(
    conn: &impl ConnectionTrait,
    upload_id: &str,
    index: i32,
    sha256: &[u8],
    tag: &str,
) -> Result<bool, DbErr> {
    let inserted = chunk::Entity::insert(chunk::ActiveModel {
        upload_id: Set(upload_id.to_owned()),
        chunk_index: Set(index),
        sha256: Set(sha256.to_vec()),
        part_tag: Set(Some(tag.to_owned())),
    })
    .on_conflict(
        OnConflict::columns([chunk::Column::UploadId, chunk::Column::ChunkIndex])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    if inserted == 1 {
        return Ok(true);
    }
    let updated = chunk::Entity::update_many()
        .col_expr(chunk::Column::PartTag, tag.into())
        .filter(chunk::Column::UploadId.eq(upload_id))
        .filter(chunk::Column::ChunkIndex.eq(index))
        .filter(chunk::Column::Sha256.eq(sha256.to_vec()))
        .exec(conn)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Gives an index back when its bytes could not be stored.
pub async fn release_chunk(
    conn: &impl ConnectionTrait,
    upload_id: &str,
    index: i32,
) -> Result<(), DbErr> {
    chunk::Entity::delete_many()
        .filter(chunk::Column::UploadId.eq(upload_id))
        .filter(chunk::Column::ChunkIndex.eq(index))
        .filter(chunk::Column::PartTag.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn set_head(conn: &impl ConnectionTrait, id: &str, head: &[u8]) -> Result<(), DbErr> {
    upload::Entity::update_many()
        .col_expr(upload::Column::Head, head.to_vec().into())
        .filter(upload::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Chunks stored so far (with their part tags), by index.
pub async fn stored_chunks(
    conn: &impl ConnectionTrait,
    upload_id: &str,
) -> Result<Vec<Chunk>, DbErr> {
    chunk::Entity::find()
        .filter(chunk::Column::UploadId.eq(upload_id))
        .filter(chunk::Column::PartTag.is_not_null())
        .order_by_asc(chunk::Column::ChunkIndex)
        .all(conn)
        .await
}

/// Moves `from` to `to` if the upload is still in `from` (or, for a completion that crashed,
/// has been `completing` since before `stale_before`); false when another caller moved it.
pub async fn transition(
    conn: &impl ConnectionTrait,
    id: &str,
    from: &str,
    to: &str,
    now: i64,
    stale_before: Option<i64>,
) -> Result<bool, DbErr> {
    let mut current = Condition::any().add(upload::Column::State.eq(from));
    if let Some(before) = stale_before {
        current = current.add(
            Condition::all()
                .add(upload::Column::State.eq(COMPLETING))
                .add(upload::Column::StateAt.lt(before)),
        );
    }
    let moved = upload::Entity::update_many()
        .col_expr(upload::Column::State, to.into())
        .col_expr(upload::Column::StateAt, now.into())
        .filter(upload::Column::Id.eq(id))
        .filter(current)
        .exec(conn)
        .await?;
    Ok(moved.rows_affected == 1)
}

/// Records the file a completion made, if the upload is still being completed (the sweep may
/// have given up on it); its chunk rows are no longer needed.
pub async fn finish(
    conn: &impl ConnectionTrait,
    id: &str,
    file_id: &str,
    now: i64,
) -> Result<bool, DbErr> {
    let finished = upload::Entity::update_many()
        .col_expr(upload::Column::State, COMPLETE.into())
        .col_expr(upload::Column::StateAt, now.into())
        .col_expr(upload::Column::FileId, file_id.into())
        .col_expr(upload::Column::Head, Option::<Vec<u8>>::None.into())
        .filter(upload::Column::Id.eq(id))
        .filter(upload::Column::State.eq(COMPLETING))
        .exec(conn)
        .await?;
    if finished.rows_affected != 1 {
        return Ok(false);
    }
    drop_chunks(conn, id).await?;
    Ok(true)
}

pub async fn drop_chunks(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    chunk::Entity::delete_many()
        .filter(chunk::Column::UploadId.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Uploads past their expiry, oldest first.
pub async fn expired(
    conn: &impl ConnectionTrait,
    now: i64,
    limit: u64,
) -> Result<Vec<Upload>, DbErr> {
    upload::Entity::find()
        .filter(upload::Column::ExpiresAt.lt(now))
        .order_by_asc(upload::Column::ExpiresAt)
        .limit(limit)
        .all(conn)
        .await
}

/// Forgets an upload and its chunks.
pub async fn remove(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    drop_chunks(conn, id).await?;
    upload::Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}
