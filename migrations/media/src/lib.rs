//! Schema migrations of the media service, tracked in `media_migrations`.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_media_tables;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> sea_orm::DynIden {
        "media_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261126_000001_create_media_tables::Migration)]
    }
}
