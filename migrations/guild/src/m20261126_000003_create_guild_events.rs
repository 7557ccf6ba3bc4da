use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The event log behind SubscribeEvents: resumable for 7 days.
#[derive(DeriveIden)]
enum GuildEvents {
    Table,
    Seq,
    GuildId,
    EventId,
    Payload,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GuildEvents::Table)
                    .col(
                        ColumnDef::new(GuildEvents::Seq)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(GuildEvents::GuildId).string().not_null())
                    .col(
                        ColumnDef::new(GuildEvents::EventId)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(GuildEvents::Payload).blob().not_null())
                    .col(
                        ColumnDef::new(GuildEvents::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("guild_events_guild_seq")
                    .table(GuildEvents::Table)
                    .col(GuildEvents::GuildId)
                    .col(GuildEvents::Seq)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GuildEvents::Table).to_owned())
            .await
    }
}
