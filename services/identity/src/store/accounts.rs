use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    sea_query::OnConflict,
};

use super::entity::account;
use crate::domain::{
    account::{Account, AccountKind, Profile, Verification},
    profile::{GuildPlace, ProfileChange},
};

pub(super) fn to_domain(model: account::Model) -> Account {
    Account {
        kind: AccountKind::parse(&model.kind),
        verification: Verification::parse(&model.verification),
        user_id: model.user_id,
        home_server: model.home_server,
        is_profile_synced: model.is_profile_synced,
        profile: Profile {
            display_name: model.display_name,
            bio: model.bio,
            avatar_file_id: model.avatar_file_id,
            avatar_url: model.avatar_url,
            avatar_color: u32::try_from(model.avatar_color).unwrap_or(0),
            presence_preference: model.presence_preference,
        },
        created_at: model.created_at,
    }
}

pub async fn find(conn: &impl ConnectionTrait, user_id: &str) -> Result<Option<Account>, DbErr> {
    Ok(account::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .map(to_domain))
}

/// A new account. For shadow accounts the profile is the client's hint, also kept as the
/// last-known home profile until the home server answers.
pub struct NewAccount<'a> {
    pub user_id: &'a str,
    pub kind: AccountKind,
    pub home_server: &'a str,
    pub verification: Verification,
    pub profile: Profile,
}

/// Inserts the account; None when it already exists (a concurrent first login won).
pub async fn insert(
    conn: &impl ConnectionTrait,
    new: NewAccount<'_>,
    now_ms: i64,
) -> Result<Option<Account>, DbErr> {
    let user_id = new.user_id.to_owned();
    let model = account::ActiveModel {
        user_id: Set(new.user_id.to_owned()),
        kind: Set(new.kind.as_str().to_owned()),
        home_server: Set(new.home_server.to_owned()),
        verification: Set(new.verification.as_str().to_owned()),
        is_profile_synced: Set(true),
        display_name: Set(new.profile.display_name.clone()),
        bio: Set(new.profile.bio.clone()),
        avatar_file_id: Set(new.profile.avatar_file_id.clone()),
        avatar_url: Set(new.profile.avatar_url.clone()),
        avatar_color: Set(i64::from(new.profile.avatar_color)),
        home_display_name: Set(new.profile.display_name),
        home_bio: Set(new.profile.bio),
        home_avatar_url: Set(new.profile.avatar_url),
        home_avatar_color: Set(i64::from(new.profile.avatar_color)),
        presence_preference: Set(new.profile.presence_preference),
        guild_order: Set("[]".to_owned()),
        migration_timestamp: Set(None),
        created_at: Set(now_ms),
        updated_at: Set(now_ms),
        last_seen_at: Set(now_ms),
        verified_at: Set(None),
        migration_signature: Set(None),
        // A shadow account's first VerifyUser is queued with it.
        refresh_queued_at: Set((new.kind == AccountKind::Shadow).then_some(now_ms)),
    };
    let inserted = account::Entity::insert(model)
        .on_conflict(
            OnConflict::column(account::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    if inserted == 0 {
        return Ok(None);
    }
    find(conn, &user_id).await
}

pub async fn touch(conn: &impl ConnectionTrait, user_id: &str, now_ms: i64) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::LastSeenAt, now_ms.into())
        .filter(account::Column::UserId.eq(user_id))
        .exec(conn)
        .await
        .map(|_| ())
}

/// Applies a validated profile change to the profile this server shows.
pub async fn update_profile(
    conn: &impl ConnectionTrait,
    user_id: &str,
    change: &ProfileChange,
    now_ms: i64,
) -> Result<Option<Account>, DbErr> {
    let Some(model) = account::Entity::find_by_id(user_id).one(conn).await? else {
        return Ok(None);
    };
    let mut active: account::ActiveModel = model.into();
    if let Some(name) = &change.display_name {
        active.display_name = Set(name.clone());
    }
    if let Some(bio) = &change.bio {
        active.bio = Set(bio.clone());
    }
    if let Some(file_id) = &change.avatar_file_id {
        active.avatar_file_id = Set(file_id.clone());
    }
    if let Some(color) = change.avatar_color {
        active.avatar_color = Set(i64::from(color));
    }
    active.updated_at = Set(now_ms);
    Ok(Some(to_domain(active.update(conn).await?)))
}

/// Shadow accounts: unlink with a local profile, or resume the home server's profile.
pub async fn set_profile_sync(
    conn: &impl ConnectionTrait,
    user_id: &str,
    synced: bool,
    local: &ProfileChange,
    now_ms: i64,
) -> Result<Option<Account>, DbErr> {
    let Some(model) = account::Entity::find_by_id(user_id).one(conn).await? else {
        return Ok(None);
    };
    let home = (
        model.home_display_name.clone(),
        model.home_bio.clone(),
        model.home_avatar_url.clone(),
        model.home_avatar_color,
    );
    let mut active: account::ActiveModel = model.into();
    active.is_profile_synced = Set(synced);
    active.updated_at = Set(now_ms);
    if synced {
        active.display_name = Set(home.0);
        active.bio = Set(home.1);
        active.avatar_url = Set(home.2);
        active.avatar_color = Set(home.3);
        active.avatar_file_id = Set(String::new());
    }
    let updated = to_domain(active.update(conn).await?);
    if synced {
        Ok(Some(updated))
    } else {
        update_profile(conn, user_id, local, now_ms).await
    }
}

pub async fn set_presence(
    conn: &impl ConnectionTrait,
    user_id: &str,
    preference: i32,
    now_ms: i64,
) -> Result<Option<Account>, DbErr> {
    let Some(model) = account::Entity::find_by_id(user_id).one(conn).await? else {
        return Ok(None);
    };
    let mut active: account::ActiveModel = model.into();
    active.presence_preference = Set(preference);
    active.updated_at = Set(now_ms);
    Ok(Some(to_domain(active.update(conn).await?)))
}

pub async fn guild_order(
    conn: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<GuildPlace>, DbErr> {
    let order = account::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .map(|m| m.guild_order)
        .unwrap_or_default();
    Ok(serde_json::from_str(&order).unwrap_or_default())
}

pub async fn set_guild_order(
    conn: &impl ConnectionTrait,
    user_id: &str,
    order: &[GuildPlace],
    now_ms: i64,
) -> Result<(), DbErr> {
    let json = serde_json::to_string(order).map_err(|e| DbErr::Custom(e.to_string()))?;
    account::Entity::update_many()
        .col_expr(account::Column::GuildOrder, json.into())
        .col_expr(account::Column::UpdatedAt, now_ms.into())
        .filter(account::Column::UserId.eq(user_id))
        .exec(conn)
        .await
        .map(|_| ())
}
