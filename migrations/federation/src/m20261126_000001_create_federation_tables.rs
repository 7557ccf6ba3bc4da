use mzchat_platform::outbox::migration::{create_outbox_table, drop_outbox_table};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Delivery state per remote server, shared by every replica.
#[derive(DeriveIden)]
enum Destinations {
    Table,
    Origin,
    ConsecutiveFailures,
    LastSuccessAt,
    /// No call before this (backoff, or a probe in flight); null when healthy.
    NextAttemptAt,
    LastError,
    UpdatedAt,
}

/// The job log: jobs waiting for a retry, and jobs done (kept a while to drop duplicates).
#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Destination,
    /// The encoded FederationJob.
    Payload,
    State,
    Attempts,
    ExpiresAt,
    NextAttemptAt,
    /// A replica working on it holds it until then...
    LeaseUntil,
    /// ...under this token, which every write of the outcome must present.
    LeaseToken,
    LastError,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    Id,
    JobId,
    Destination,
    Payload,
    Attempts,
    LastError,
    DeadAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Destinations::Table)
                    .col(
                        ColumnDef::new(Destinations::Origin)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Destinations::ConsecutiveFailures)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Destinations::LastSuccessAt)
                            .big_integer()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Destinations::NextAttemptAt)
                            .big_integer()
                            .null(),
                    )
                    .col(ColumnDef::new(Destinations::LastError).text().not_null())
                    .col(
                        ColumnDef::new(Destinations::UpdatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(ColumnDef::new(Jobs::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Jobs::Kind).string().not_null())
                    .col(ColumnDef::new(Jobs::Destination).string().not_null())
                    .col(ColumnDef::new(Jobs::Payload).blob().not_null())
                    .col(ColumnDef::new(Jobs::State).string().not_null())
                    .col(ColumnDef::new(Jobs::Attempts).integer().not_null())
                    .col(ColumnDef::new(Jobs::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(Jobs::NextAttemptAt).big_integer().not_null())
                    .col(ColumnDef::new(Jobs::LeaseUntil).big_integer().null())
                    .col(ColumnDef::new(Jobs::LeaseToken).string().null())
                    .col(ColumnDef::new(Jobs::LastError).text().not_null())
                    .col(ColumnDef::new(Jobs::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("jobs_due")
                    .table(Jobs::Table)
                    .col(Jobs::State)
                    .col(Jobs::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("jobs_destination")
                    .table(Jobs::Table)
                    .col(Jobs::Destination)
                    .col(Jobs::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeadLetters::Table)
                    .col(
                        ColumnDef::new(DeadLetters::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(DeadLetters::JobId)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(DeadLetters::Destination).string().not_null())
                    .col(ColumnDef::new(DeadLetters::Payload).blob().not_null())
                    .col(ColumnDef::new(DeadLetters::Attempts).integer().not_null())
                    .col(ColumnDef::new(DeadLetters::LastError).text().not_null())
                    .col(ColumnDef::new(DeadLetters::DeadAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        create_outbox_table(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_outbox_table(manager).await?;
        for table in [
            DeadLetters::Table.into_iden(),
            Jobs::Table.into_iden(),
            Destinations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
