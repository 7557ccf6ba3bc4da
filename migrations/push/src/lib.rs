//! Schema migrations of the push-relay service, tracked in `push_migrations`.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_push_tables;
mod m20261126_000002_fcm_and_fanouts;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> sea_orm::DynIden {
        "push_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_push_tables::Migration),
            Box::new(m20261126_000002_fcm_and_fanouts::Migration),
        ]
    }
}
