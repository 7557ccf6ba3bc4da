use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Open event streams, one row each, kept alive by heartbeats (a replica that dies stops them).
#[derive(DeriveIden)]
enum PresenceSessions {
    Table,
    StreamId,
    UserId,
    HeartbeatAt,
}

/// The last presence announced per user; its row lock orders a user's transitions.
#[derive(DeriveIden)]
enum Presence {
    Table,
    UserId,
    Online,
    ChangedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PresenceSessions::Table)
                    .col(
                        ColumnDef::new(PresenceSessions::StreamId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PresenceSessions::UserId).string().not_null())
                    .col(
                        ColumnDef::new(PresenceSessions::HeartbeatAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("presence_sessions_user")
                    .table(PresenceSessions::Table)
                    .col(PresenceSessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Presence::Table)
                    .col(
                        ColumnDef::new(Presence::UserId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Presence::Online).boolean().not_null())
                    .col(ColumnDef::new(Presence::ChangedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Presence::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PresenceSessions::Table).to_owned())
            .await
    }
}
