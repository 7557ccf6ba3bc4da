//! sea-orm entities of the federation schema; they stay inside `store`.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod destination {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "destinations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub origin: String,
        pub consecutive_failures: i32,
        pub last_success_at: Option<i64>,
        pub next_attempt_at: Option<i64>,
        pub last_error: String,
        pub updated_at: i64,
    }

    no_relations!();
}

pub mod job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub kind: String,
        pub destination: String,
        pub payload: Vec<u8>,
        pub state: String,
        pub attempts: i32,
        pub expires_at: i64,
        pub next_attempt_at: i64,
        pub lease_until: Option<i64>,
        pub lease_token: Option<String>,
        pub last_error: String,
        pub updated_at: i64,
    }

    no_relations!();
}

pub mod dead_letter {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "dead_letters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub job_id: String,
        pub destination: String,
        pub payload: Vec<u8>,
        pub attempts: i32,
        pub last_error: String,
        pub dead_at: i64,
    }

    no_relations!();
}
