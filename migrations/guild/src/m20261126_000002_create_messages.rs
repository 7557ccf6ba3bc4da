use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    GuildId,
    ChannelId,
    AuthorId,
    Content,
    MentionUserIds,
    MentionEveryone,
    AttachmentFileIds,
    Nonce,
    CreatedAt,
    EditedAt,
    PinnedAt,
    PinnedBy,
}

#[derive(DeriveIden)]
enum Reactions {
    Table,
    MessageId,
    UserId,
    Emoji,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(
                        ColumnDef::new(Messages::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Messages::GuildId).string().not_null())
                    .col(ColumnDef::new(Messages::ChannelId).string().not_null())
                    .col(ColumnDef::new(Messages::AuthorId).string().not_null())
                    .col(ColumnDef::new(Messages::Content).text().not_null())
                    .col(ColumnDef::new(Messages::MentionUserIds).text().not_null())
                    .col(
                        ColumnDef::new(Messages::MentionEveryone)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Messages::AttachmentFileIds)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Messages::Nonce).string().null())
                    .col(ColumnDef::new(Messages::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Messages::EditedAt).big_integer().null())
                    .col(ColumnDef::new(Messages::PinnedAt).big_integer().null())
                    .col(ColumnDef::new(Messages::PinnedBy).string().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::ChannelId)
                            .to(Channels::Table, Channels::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Ids are time-ordered (UUIDv7): (channel, id) pages a channel's history.
        manager
            .create_index(
                Index::create()
                    .name("messages_channel_id")
                    .table(Messages::Table)
                    .col(Messages::ChannelId)
                    .col(Messages::Id)
                    .to_owned(),
            )
            .await?;
        // A client retrying a send with the same nonce gets the first message back.
        manager
            .create_index(
                Index::create()
                    .name("messages_nonce")
                    .table(Messages::Table)
                    .col(Messages::ChannelId)
                    .col(Messages::AuthorId)
                    .col(Messages::Nonce)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Reactions::Table)
                    .col(ColumnDef::new(Reactions::MessageId).string().not_null())
                    .col(ColumnDef::new(Reactions::UserId).string().not_null())
                    .col(ColumnDef::new(Reactions::Emoji).string().not_null())
                    .col(
                        ColumnDef::new(Reactions::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Reactions::MessageId)
                            .col(Reactions::Emoji)
                            .col(Reactions::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Reactions::Table, Reactions::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Reactions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Messages::Table).to_owned())
            .await
    }
}
