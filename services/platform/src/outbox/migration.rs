//! The outbox table, created by each service's first migration in that service's own schema.

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Seq,
    EventId,
    Subject,
    Payload,
    Headers,
    CreatedAt,
    NotBefore,
}

pub async fn create_outbox_table(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Outbox::Table)
                .col(
                    ColumnDef::new(Outbox::Seq)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(Outbox::EventId)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Outbox::Subject).string().not_null())
                .col(ColumnDef::new(Outbox::Payload).blob().not_null())
                .col(ColumnDef::new(Outbox::Headers).text().not_null())
                .col(ColumnDef::new(Outbox::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Outbox::NotBefore).big_integer().null())
                .to_owned(),
        )
        .await
}

pub async fn drop_outbox_table(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(Outbox::Table).to_owned())
        .await
}
