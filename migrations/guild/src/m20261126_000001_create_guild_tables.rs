use mzchat_platform::outbox::migration::{create_outbox_table, drop_outbox_table};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Guilds {
    Table,
    Id,
    Name,
    IconFileId,
    OwnerId,
    PermissionVersion,
    MemberCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
    GuildId,
    Name,
    Topic,
    Position,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    Id,
    GuildId,
    Name,
    Permissions,
    Weight,
    Color,
    IsEveryone,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    GuildId,
    UserId,
    HomeServer,
    JoinedAt,
}

#[derive(DeriveIden)]
enum MemberRoles {
    Table,
    GuildId,
    UserId,
    RoleId,
}

#[derive(DeriveIden)]
enum Bans {
    Table,
    GuildId,
    UserId,
    Reason,
    BannedBy,
    BannedAt,
}

#[derive(DeriveIden)]
enum Invites {
    Table,
    Token,
    GuildId,
    ChannelId,
    CreatorId,
    Uses,
    MaxUses,
    ExpiresAt,
    RevokedAt,
    CreatedAt,
}

fn index(name: &str, table: impl IntoIden, columns: Vec<DynIden>) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(column);
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Guilds::Table)
                    .col(ColumnDef::new(Guilds::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Guilds::Name).string().not_null())
                    .col(ColumnDef::new(Guilds::IconFileId).string().not_null())
                    .col(ColumnDef::new(Guilds::OwnerId).string().not_null())
                    .col(
                        ColumnDef::new(Guilds::PermissionVersion)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Guilds::MemberCount).big_integer().not_null())
                    .col(ColumnDef::new(Guilds::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Guilds::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Channels::Table)
                    .col(
                        ColumnDef::new(Channels::Id)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Channels::GuildId).string().not_null())
                    .col(ColumnDef::new(Channels::Name).string().not_null())
                    .col(ColumnDef::new(Channels::Topic).text().not_null())
                    .col(ColumnDef::new(Channels::Position).big_integer().not_null())
                    .col(ColumnDef::new(Channels::Kind).integer().not_null())
                    .col(ColumnDef::new(Channels::CreatedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Channels::Table, Channels::GuildId)
                            .to(Guilds::Table, Guilds::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "channels_guild",
                Channels::Table,
                vec![Channels::GuildId.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Roles::Table)
                    .col(ColumnDef::new(Roles::Id).string().not_null().primary_key())
                    .col(ColumnDef::new(Roles::GuildId).string().not_null())
                    .col(ColumnDef::new(Roles::Name).string().not_null())
                    .col(ColumnDef::new(Roles::Permissions).big_integer().not_null())
                    .col(ColumnDef::new(Roles::Weight).big_integer().not_null())
                    .col(ColumnDef::new(Roles::Color).big_integer().not_null())
                    .col(ColumnDef::new(Roles::IsEveryone).boolean().not_null())
                    .col(ColumnDef::new(Roles::CreatedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Roles::Table, Roles::GuildId)
                            .to(Guilds::Table, Guilds::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "roles_guild",
                Roles::Table,
                vec![Roles::GuildId.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Members::Table)
                    .col(ColumnDef::new(Members::GuildId).string().not_null())
                    .col(ColumnDef::new(Members::UserId).string().not_null())
                    .col(ColumnDef::new(Members::HomeServer).string().not_null())
                    .col(ColumnDef::new(Members::JoinedAt).big_integer().not_null())
                    .primary_key(Index::create().col(Members::GuildId).col(Members::UserId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Members::Table, Members::GuildId)
                            .to(Guilds::Table, Guilds::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "members_user",
                Members::Table,
                vec![Members::UserId.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MemberRoles::Table)
                    .col(ColumnDef::new(MemberRoles::GuildId).string().not_null())
                    .col(ColumnDef::new(MemberRoles::UserId).string().not_null())
                    .col(ColumnDef::new(MemberRoles::RoleId).string().not_null())
                    .primary_key(
                        Index::create()
                            .col(MemberRoles::GuildId)
                            .col(MemberRoles::UserId)
                            .col(MemberRoles::RoleId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MemberRoles::Table, MemberRoles::RoleId)
                            .to(Roles::Table, Roles::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "member_roles_role",
                MemberRoles::Table,
                vec![MemberRoles::RoleId.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Bans::Table)
                    .col(ColumnDef::new(Bans::GuildId).string().not_null())
                    .col(ColumnDef::new(Bans::UserId).string().not_null())
                    .col(ColumnDef::new(Bans::Reason).text().not_null())
                    .col(ColumnDef::new(Bans::BannedBy).string().not_null())
                    .col(ColumnDef::new(Bans::BannedAt).big_integer().not_null())
                    .primary_key(Index::create().col(Bans::GuildId).col(Bans::UserId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Bans::Table, Bans::GuildId)
                            .to(Guilds::Table, Guilds::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Invites::Table)
                    .col(
                        ColumnDef::new(Invites::Token)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Invites::GuildId).string().not_null())
                    .col(ColumnDef::new(Invites::ChannelId).string().not_null())
                    .col(ColumnDef::new(Invites::CreatorId).string().not_null())
                    .col(ColumnDef::new(Invites::Uses).big_integer().not_null())
                    .col(ColumnDef::new(Invites::MaxUses).big_integer().not_null())
                    .col(ColumnDef::new(Invites::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(Invites::RevokedAt).big_integer().null())
                    .col(ColumnDef::new(Invites::CreatedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invites::Table, Invites::GuildId)
                            .to(Guilds::Table, Guilds::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "invites_guild",
                Invites::Table,
                vec![Invites::GuildId.into_iden()],
            ))
            .await?;
        create_outbox_table(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_outbox_table(manager).await?;
        for table in [
            Invites::Table.into_iden(),
            Bans::Table.into_iden(),
            MemberRoles::Table.into_iden(),
            Members::Table.into_iden(),
            Roles::Table.into_iden(),
            Channels::Table.into_iden(),
            Guilds::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
