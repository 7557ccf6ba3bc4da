use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    /// How the push goes: `endpoint` (an HTTP push endpoint, the URL in `endpoint_url`) or
    /// `fcm` (FCM HTTP v1, the registration token in `endpoint_url`).
    Transport,
}

/// MENTION_EVERYONE messages whose members are being pushed, one page of members at a time,
/// so a large guild neither blocks other mentions nor starts over after a crash.
#[derive(DeriveIden)]
enum Fanouts {
    Table,
    MessageId,
    GuildId,
    ChannelId,
    AuthorId,
    /// Users the message also named (their notice says MENTION), newline-separated.
    Mentioned,
    /// Seconds since the epoch.
    SentAt,
    /// The next page starts after this member ("" at the start).
    AfterUserId,
    NextAttemptAt,
    LeaseUntil,
    LeaseToken,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .add_column(
                        ColumnDef::new(Deliveries::Transport)
                            .string()
                            .not_null()
                            .default("endpoint"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Fanouts::Table)
                    .col(
                        ColumnDef::new(Fanouts::MessageId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Fanouts::GuildId).string().not_null())
                    .col(ColumnDef::new(Fanouts::ChannelId).string().not_null())
                    .col(ColumnDef::new(Fanouts::AuthorId).string().not_null())
                    .col(ColumnDef::new(Fanouts::Mentioned).text().not_null())
                    .col(ColumnDef::new(Fanouts::SentAt).big_integer().not_null())
                    .col(ColumnDef::new(Fanouts::AfterUserId).string().not_null())
                    .col(
                        ColumnDef::new(Fanouts::NextAttemptAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Fanouts::LeaseUntil).big_integer().null())
                    .col(ColumnDef::new(Fanouts::LeaseToken).string().null())
                    .col(ColumnDef::new(Fanouts::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Fanouts::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .drop_column(Deliveries::Transport)
                    .to_owned(),
            )
            .await
    }
}
