//! Schema migrations of the guild service, tracked in `guild_migrations`.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_guild_tables;
mod m20261126_000002_create_messages;
mod m20261126_000003_create_guild_events;
mod m20261126_000004_create_presence;
mod m20261126_000005_create_profiles;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> sea_orm::DynIden {
        "guild_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_guild_tables::Migration),
            Box::new(m20261126_000002_create_messages::Migration),
            Box::new(m20261126_000003_create_guild_events::Migration),
            Box::new(m20261126_000004_create_presence::Migration),
            Box::new(m20261126_000005_create_profiles::Migration),
        ]
    }
}
