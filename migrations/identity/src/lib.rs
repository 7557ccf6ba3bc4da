//! Schema migrations of the identity service, tracked in `identity_migrations`.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_identity_tables;
mod m20261126_000002_federation_state;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> sea_orm::DynIden {
        "identity_migrations".into_iden()
    }

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_identity_tables::Migration),
            Box::new(m20261126_000002_federation_state::Migration),
        ]
    }
}
