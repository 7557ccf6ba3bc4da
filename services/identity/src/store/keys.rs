use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};

use super::entity::server_key;

/// A stored key pair.
#[derive(Clone)]
pub struct StoredKey {
    pub key_id: String,
    pub purpose: String,
    pub secret: [u8; 32],
    pub public: [u8; 32],
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("key_id", &self.key_id)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

/// Keys still published (not past `publish_until`), oldest first.
pub async fn published(conn: &impl ConnectionTrait, now_ms: i64) -> Result<Vec<StoredKey>, DbErr> {
    let rows = server_key::Entity::find()
        .filter(
            Condition::any()
                .add(server_key::Column::PublishUntil.is_null())
                .add(server_key::Column::PublishUntil.gt(now_ms)),
        )
        .all(conn)
        .await?;
    let mut keys: Vec<StoredKey> = rows
        .into_iter()
        .filter_map(|row| {
            Some(StoredKey {
                secret: row.secret_key.as_slice().try_into().ok()?,
                public: row.public_key.as_slice().try_into().ok()?,
                key_id: row.key_id,
                purpose: row.purpose,
                created_at: row.created_at,
                retired_at: row.retired_at,
                publish_until: row.publish_until,
            })
        })
        .collect();
    keys.sort_by_key(|k| k.created_at);
    Ok(keys)
}

pub async fn insert(conn: &impl ConnectionTrait, key: &StoredKey) -> Result<(), DbErr> {
    server_key::ActiveModel {
        key_id: Set(key.key_id.clone()),
        purpose: Set(key.purpose.clone()),
        secret_key: Set(key.secret.to_vec()),
        public_key: Set(key.public.to_vec()),
        created_at: Set(key.created_at),
        retired_at: Set(None),
        publish_until: Set(None),
    }
    .insert(conn)
    .await
    .map(|_| ())
}

/// Stops signing with a key; it stays published until `publish_until`.
pub async fn retire(
    conn: &impl ConnectionTrait,
    key_id: &str,
    now_ms: i64,
    publish_until: i64,
) -> Result<(), DbErr> {
    server_key::Entity::update_many()
        .col_expr(server_key::Column::RetiredAt, now_ms.into())
        .col_expr(server_key::Column::PublishUntil, publish_until.into())
        .filter(server_key::Column::KeyId.eq(key_id))
        .filter(server_key::Column::RetiredAt.is_null())
        .exec(conn)
        .await
        .map(|_| ())
}
