//! sea-orm entities of the guild schema; they stay inside `store`.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod guild {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "guilds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub icon_file_id: String,
        pub owner_id: String,
        pub permission_version: i64,
        pub member_count: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    no_relations!();
}

pub mod channel {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "channels")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub guild_id: String,
        pub name: String,
        pub topic: String,
        pub position: i64,
        pub kind: i32,
        pub created_at: i64,
    }

    no_relations!();
}

pub mod role {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub guild_id: String,
        pub name: String,
        pub permissions: i64,
        pub weight: i64,
        pub color: i64,
        pub is_everyone: bool,
        pub created_at: i64,
    }

    no_relations!();
}

pub mod member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub home_server: String,
        pub joined_at: i64,
    }

    no_relations!();
}

pub mod member_role {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "member_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub role_id: String,
    }

    no_relations!();
}

pub mod ban {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bans")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub guild_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub reason: String,
        pub banned_by: String,
        pub banned_at: i64,
    }

    no_relations!();
}

pub mod invite {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "invites")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token: String,
        pub guild_id: String,
        pub channel_id: String,
        pub creator_id: String,
        pub uses: i64,
        pub max_uses: i64,
        pub expires_at: i64,
        pub revoked_at: Option<i64>,
        pub created_at: i64,
    }

    no_relations!();
}

pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub guild_id: String,
        pub channel_id: String,
        pub author_id: String,
        pub content: String,
        /// JSON array of user ids.
        pub mention_user_ids: String,
        pub mention_everyone: bool,
        /// JSON array of file ids.
        pub attachment_file_ids: String,
        pub nonce: Option<String>,
        pub created_at: i64,
        pub edited_at: Option<i64>,
        pub pinned_at: Option<i64>,
        pub pinned_by: Option<String>,
    }

    no_relations!();
}

pub mod reaction {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reactions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub emoji: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub created_at: i64,
    }

    no_relations!();
}

pub mod presence_session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "presence_sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub stream_id: String,
        pub user_id: String,
        pub heartbeat_at: i64,
    }

    no_relations!();
}

pub mod presence {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "presence")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub online: bool,
        pub changed_at: i64,
    }

    no_relations!();
}

pub mod profile {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "profiles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        /// Encoded `mzchat.common.v1.Profile`.
        pub profile: Vec<u8>,
        pub updated_at: i64,
    }

    no_relations!();
}
