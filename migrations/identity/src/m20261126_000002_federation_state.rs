use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Push delegation tokens this server issued to other servers for its users (PROTOCOL.md
/// section 7), kept so they can be revoked.
#[derive(DeriveIden)]
enum PushDelegationTokens {
    Table,
    TokenId,
    UserId,
    Audience,
    IssuedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    /// When the home server last confirmed a shadow account.
    VerifiedAt,
    /// When the last refresh (VerifyUser) was queued.
    RefreshQueuedAt,
}

#[derive(DeriveIden)]
enum BanNotifications {
    Table,
    UserId,
    Origin,
    GuildId,
    BannedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PushDelegationTokens::Table)
                    .col(
                        ColumnDef::new(PushDelegationTokens::TokenId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PushDelegationTokens::UserId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushDelegationTokens::Audience)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushDelegationTokens::IssuedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushDelegationTokens::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushDelegationTokens::RevokedAt)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("push_delegation_tokens_user_audience")
                    .table(PushDelegationTokens::Table)
                    .col(PushDelegationTokens::UserId)
                    .col(PushDelegationTokens::Audience)
                    .to_owned(),
            )
            .await?;
        // SQLite adds one column per statement.
        for column in [Accounts::VerifiedAt, Accounts::RefreshQueuedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .add_column(ColumnDef::new(column).big_integer().null())
                        .to_owned(),
                )
                .await?;
        }
        // The same ban reported twice is stored once.
        manager
            .create_index(
                Index::create()
                    .name("ban_notifications_once")
                    .table(BanNotifications::Table)
                    .col(BanNotifications::UserId)
                    .col(BanNotifications::Origin)
                    .col(BanNotifications::GuildId)
                    .col(BanNotifications::BannedAt)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ban_notifications_once")
                    .table(BanNotifications::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Accounts::VerifiedAt, Accounts::RefreshQueuedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(PushDelegationTokens::Table).to_owned())
            .await
    }
}
