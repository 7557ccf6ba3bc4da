use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One upload: declared at StartUpload, filled chunk by chunk, turned into a file at
/// CompleteUpload, or dropped (aborted, or unfinished after its expiry).
#[derive(DeriveIden)]
enum Uploads {
    Table,
    /// UUIDv7; also the file id's stem and the object key's.
    Id,
    OwnerId,
    FileName,
    DeclaredType,
    Size,
    ChunkSize,
    ChunkCount,
    /// `mzchat.media.v1.UploadPurpose`.
    Purpose,
    /// The object store's id for the multipart upload (S3 UploadId); empty for the disk.
    BackendId,
    /// `open`, `completing`, `complete` or `aborted`.
    State,
    /// The first bytes of chunk 0, for sniffing the content type at completion.
    Head,
    /// Set when complete.
    FileId,
    /// When `completing` began (a crashed completion may be retried after a while).
    StateAt,
    CreatedAt,
    ExpiresAt,
}

/// Chunks stored so far. A row is written before the bytes go to the store (claiming the index
/// for its digest) and gets its part tag once they are there.
#[derive(DeriveIden)]
enum UploadChunks {
    Table,
    UploadId,
    ChunkIndex,
    Sha256,
    /// The store's tag for the part (S3 ETag); null while the bytes are on their way.
    PartTag,
}

/// Files: complete uploads, addressed by file id.
#[derive(DeriveIden)]
enum Files {
    Table,
    /// "<uuidv7>.<ext>", the extension from the sniffed content type.
    FileId,
    OwnerId,
    /// Where the bytes are in the store.
    ObjectKey,
    ContentType,
    Size,
    FileName,
    Purpose,
    /// The composite SHA-256 (hex), also the strong ETag.
    Sha256,
    CreatedAt,
    /// Set by DeleteFile; the bytes are removed from the store afterwards.
    DeletedAt,
    /// Whether the deleted file's bytes are gone from the store.
    Purged,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Uploads::Table)
                    .col(
                        ColumnDef::new(Uploads::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Uploads::OwnerId).string().not_null())
                    .col(ColumnDef::new(Uploads::FileName).string().not_null())
                    .col(ColumnDef::new(Uploads::DeclaredType).string().not_null())
                    .col(ColumnDef::new(Uploads::Size).big_integer().not_null())
                    .col(ColumnDef::new(Uploads::ChunkSize).integer().not_null())
                    .col(ColumnDef::new(Uploads::ChunkCount).integer().not_null())
                    .col(ColumnDef::new(Uploads::Purpose).integer().not_null())
                    .col(ColumnDef::new(Uploads::BackendId).text().not_null())
                    .col(ColumnDef::new(Uploads::State).string().not_null())
                    .col(ColumnDef::new(Uploads::Head).blob().null())
                    .col(ColumnDef::new(Uploads::FileId).string().null())
                    .col(ColumnDef::new(Uploads::StateAt).big_integer().not_null())
                    .col(ColumnDef::new(Uploads::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Uploads::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uploads_by_owner")
                    .table(Uploads::Table)
                    .col(Uploads::OwnerId)
                    .col(Uploads::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uploads_by_expiry")
                    .table(Uploads::Table)
                    .col(Uploads::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UploadChunks::Table)
                    .col(ColumnDef::new(UploadChunks::UploadId).string().not_null())
                    .col(
                        ColumnDef::new(UploadChunks::ChunkIndex)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(UploadChunks::Sha256).blob().not_null())
                    .col(ColumnDef::new(UploadChunks::PartTag).text().null())
                    .primary_key(
                        Index::create()
                            .col(UploadChunks::UploadId)
                            .col(UploadChunks::ChunkIndex),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Files::Table)
                    .col(
                        ColumnDef::new(Files::FileId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Files::OwnerId).string().not_null())
                    .col(ColumnDef::new(Files::ObjectKey).string().not_null())
                    .col(ColumnDef::new(Files::ContentType).string().not_null())
                    .col(ColumnDef::new(Files::Size).big_integer().not_null())
                    .col(ColumnDef::new(Files::FileName).string().not_null())
                    .col(ColumnDef::new(Files::Purpose).integer().not_null())
                    .col(ColumnDef::new(Files::Sha256).string().not_null())
                    .col(ColumnDef::new(Files::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Files::DeletedAt).big_integer().null())
                    .col(
                        ColumnDef::new(Files::Purged)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("files_by_owner")
                    .table(Files::Table)
                    .col(Files::OwnerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Files::Table.into_iden(),
            UploadChunks::Table.into_iden(),
            Uploads::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
