//! Users' profiles as identity shows them, kept from its `profile.updated` events.

use std::collections::HashMap;

use mzchat_proto::common::Profile;
use prost::Message;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, sea_query::OnConflict,
};

use super::entity::profile::{ActiveModel, Column, Entity};

pub async fn upsert(
    conn: &impl ConnectionTrait,
    profile: &Profile,
    now_ms: i64,
) -> Result<(), DbErr> {
    Entity::insert(ActiveModel {
        user_id: Set(profile.user_id.clone()),
        profile: Set(profile.encode_to_vec()),
        updated_at: Set(now_ms),
    })
    .on_conflict(
        OnConflict::column(Column::UserId)
            .update_columns([Column::Profile, Column::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn of_users(
    conn: &impl ConnectionTrait,
    user_ids: &[String],
) -> Result<HashMap<String, Profile>, DbErr> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(Entity::find()
        .filter(Column::UserId.is_in(user_ids.iter().cloned()))
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|row| Some((row.user_id, Profile::decode(row.profile.as_slice()).ok()?)))
        .collect())
}
