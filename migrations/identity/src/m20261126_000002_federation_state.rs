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

/// Audiences that may not get a new delegation token for a user until a time: set when a
/// propagated ban leaves the user no guild there, so the next VerifyUser does not undo the
/// revocation.
#[derive(DeriveIden)]
enum DelegationSuppressions {
    Table,
    UserId,
    Audience,
    Until,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    /// When the home server last confirmed a shadow account.
    VerifiedAt,
    /// When the last refresh (VerifyUser) was queued.
    RefreshQueuedAt,
    /// K_id's signature over the migration last applied (with `migration_timestamp`), shown to
    /// servers that still think the user lives here.
    MigrationSignature,
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
        manager
            .create_table(
                Table::create()
                    .table(DelegationSuppressions::Table)
                    .col(
                        ColumnDef::new(DelegationSuppressions::UserId)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DelegationSuppressions::Audience)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(DelegationSuppressions::Until)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(DelegationSuppressions::UserId)
                            .col(DelegationSuppressions::Audience),
                    )
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
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(ColumnDef::new(Accounts::MigrationSignature).blob().null())
                    .to_owned(),
            )
            .await?;
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
        for column in [
            Accounts::VerifiedAt,
            Accounts::RefreshQueuedAt,
            Accounts::MigrationSignature,
        ] {
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
            .drop_table(
                Table::drop()
                    .table(DelegationSuppressions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(PushDelegationTokens::Table).to_owned())
            .await
    }
}
