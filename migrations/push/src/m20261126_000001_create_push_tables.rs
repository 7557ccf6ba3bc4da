use mzchat_platform::outbox::migration::{create_outbox_table, drop_outbox_table};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One push endpoint per device (UnifiedPush, ntfy or Web Push).
#[derive(DeriveIden)]
enum Distributors {
    Table,
    UserId,
    DeviceId,
    EndpointUrl,
    Kind,
    /// RFC 8291 keys, both or neither.
    P256dh,
    Auth,
    CreatedAt,
}

/// Devices identity revoked: they may not register again (their access tokens outlive the
/// revocation by up to an hour).
#[derive(DeriveIden)]
enum RevokedDevices {
    Table,
    UserId,
    DeviceId,
    RevokedAt,
}

/// One FCM registration token per device.
#[derive(DeriveIden)]
enum FcmTokens {
    Table,
    UserId,
    DeviceId,
    Token,
    CreatedAt,
}

/// The push delegation token each remote user's home server issued to this server (from
/// VerifyUser answers): what relays a push to that user.
#[derive(DeriveIden)]
enum HeldTokens {
    Table,
    UserId,
    HomeServer,
    TokenBody,
    TokenSignature,
    ExpiresAt,
    UpdatedAt,
}

/// One push to one device: the delivery queue and its log.
#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    /// What it is about (one push per message, user and device).
    MessageId,
    UserId,
    DeviceId,
    EndpointUrl,
    P256dh,
    Auth,
    /// The JSON notice (never message text).
    Payload,
    /// `pending`, `delivered` or `dropped`.
    State,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    /// The claim that holds the lease; only it may record the outcome.
    LeaseToken,
    ExpiresAt,
    LastResult,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Distributors::Table)
                    .col(ColumnDef::new(Distributors::UserId).string().not_null())
                    .col(ColumnDef::new(Distributors::DeviceId).string().not_null())
                    .col(ColumnDef::new(Distributors::EndpointUrl).text().not_null())
                    .col(ColumnDef::new(Distributors::Kind).integer().not_null())
                    .col(ColumnDef::new(Distributors::P256dh).blob().null())
                    .col(ColumnDef::new(Distributors::Auth).blob().null())
                    .col(
                        ColumnDef::new(Distributors::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Distributors::UserId)
                            .col(Distributors::DeviceId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FcmTokens::Table)
                    .col(ColumnDef::new(FcmTokens::UserId).string().not_null())
                    .col(ColumnDef::new(FcmTokens::DeviceId).string().not_null())
                    .col(ColumnDef::new(FcmTokens::Token).text().not_null())
                    .col(
                        ColumnDef::new(FcmTokens::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(FcmTokens::UserId)
                            .col(FcmTokens::DeviceId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(
                        ColumnDef::new(Deliveries::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Deliveries::MessageId).string().not_null())
                    .col(ColumnDef::new(Deliveries::UserId).string().not_null())
                    .col(ColumnDef::new(Deliveries::DeviceId).string().not_null())
                    .col(ColumnDef::new(Deliveries::EndpointUrl).text().not_null())
                    .col(ColumnDef::new(Deliveries::P256dh).blob().null())
                    .col(ColumnDef::new(Deliveries::Auth).blob().null())
                    .col(ColumnDef::new(Deliveries::Payload).blob().not_null())
                    .col(ColumnDef::new(Deliveries::State).string().not_null())
                    .col(ColumnDef::new(Deliveries::Attempts).integer().not_null())
                    .col(
                        ColumnDef::new(Deliveries::NextAttemptAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Deliveries::LeaseUntil).big_integer().null())
                    .col(ColumnDef::new(Deliveries::LeaseToken).string().null())
                    .col(
                        ColumnDef::new(Deliveries::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Deliveries::LastResult).text().not_null())
                    .col(
                        ColumnDef::new(Deliveries::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Deliveries::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_once")
                    .table(Deliveries::Table)
                    .col(Deliveries::MessageId)
                    .col(Deliveries::UserId)
                    .col(Deliveries::DeviceId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("deliveries_due")
                    .table(Deliveries::Table)
                    .col(Deliveries::State)
                    .col(Deliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RevokedDevices::Table)
                    .col(ColumnDef::new(RevokedDevices::UserId).string().not_null())
                    .col(ColumnDef::new(RevokedDevices::DeviceId).string().not_null())
                    .col(
                        ColumnDef::new(RevokedDevices::RevokedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(RevokedDevices::UserId)
                            .col(RevokedDevices::DeviceId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HeldTokens::Table)
                    .col(
                        ColumnDef::new(HeldTokens::UserId)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(HeldTokens::HomeServer).string().not_null())
                    .col(ColumnDef::new(HeldTokens::TokenBody).blob().not_null())
                    .col(ColumnDef::new(HeldTokens::TokenSignature).blob().not_null())
                    .col(
                        ColumnDef::new(HeldTokens::ExpiresAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(HeldTokens::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        create_outbox_table(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_outbox_table(manager).await?;
        manager
            .drop_table(Table::drop().table(HeldTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RevokedDevices::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Deliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(FcmTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Distributors::Table).to_owned())
            .await
    }
}
