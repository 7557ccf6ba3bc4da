//! sea-orm entities of the media schema; they stay inside `store`.

pub mod upload {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "uploads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub owner_id: String,
        pub file_name: String,
        pub declared_type: String,
        pub size: i64,
        pub chunk_size: i32,
        pub chunk_count: i32,
        pub purpose: i32,
        pub backend_id: String,
        pub state: String,
        pub head: Option<Vec<u8>>,
        pub file_id: Option<String>,
        pub state_at: i64,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod chunk {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "upload_chunks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub upload_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub chunk_index: i32,
        pub sha256: Vec<u8>,
        pub part_tag: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod file {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "files")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub file_id: String,
        pub owner_id: String,
        pub object_key: String,
        pub content_type: String,
        pub size: i64,
        pub file_name: String,
        pub purpose: i32,
        pub sha256: String,
        pub created_at: i64,
        pub deleted_at: Option<i64>,
        pub purged: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
