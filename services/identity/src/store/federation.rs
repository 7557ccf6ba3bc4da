//! Federation state of accounts: what home servers confirm (shadow accounts), migrations, push
//! delegation tokens issued to other servers, and ban notifications received.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, sea_query::OnConflict,
};

use super::{
    accounts::to_domain,
    entity::{
        account, ban_notification, delegation_suppression, delegation_token,
        revocation as device_revocation,
    },
};
use crate::domain::account::{Account, AccountKind, Verification};

/// The authoritative profile a home server sent.
#[derive(Debug, Clone, Default)]
pub struct HomeProfile {
    pub display_name: String,
    pub bio: String,
    pub avatar_url: String,
    pub avatar_color: u32,
    pub presence_preference: i32,
}

/// The migration last applied to the user: its timestamp and K_id signature.
pub async fn applied_migration(
    conn: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Option<(i64, Vec<u8>)>, DbErr> {
    Ok(account::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .and_then(|m| {
            Some((
                m.migration_timestamp?,
                m.migration_signature.unwrap_or_default(),
            ))
        }))
}

/// Stores a home server's answer; the shown profile follows it unless the user unlinked it.
pub async fn apply_verified(
    conn: &impl ConnectionTrait,
    user_id: &str,
    home: &HomeProfile,
    now_ms: i64,
) -> Result<Option<Account>, DbErr> {
    let Some(model) = account::Entity::find_by_id(user_id).one(conn).await? else {
        return Ok(None);
    };
    let synced = model.is_profile_synced;
    let mut active: account::ActiveModel = model.into();
    active.verification = Set(Verification::Verified.as_str().to_owned());
    active.verified_at = Set(Some(now_ms));
    active.home_display_name = Set(home.display_name.clone());
    active.home_bio = Set(home.bio.clone());
    active.home_avatar_url = Set(home.avatar_url.clone());
    active.home_avatar_color = Set(i64::from(home.avatar_color));
    active.presence_preference = Set(home.presence_preference);
    if synced {
        active.display_name = Set(home.display_name.clone());
        active.bio = Set(home.bio.clone());
        active.avatar_url = Set(home.avatar_url.clone());
        active.avatar_color = Set(i64::from(home.avatar_color));
    }
    active.updated_at = Set(now_ms);
    Ok(Some(to_domain(active.update(conn).await?)))
}

pub async fn set_verification(
    conn: &impl ConnectionTrait,
    user_id: &str,
    verification: Verification,
    now_ms: i64,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::Verification, verification.as_str().into())
        .col_expr(account::Column::UpdatedAt, now_ms.into())
        .filter(account::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// A move of the user's home that K_id signed (`new_home|timestamp`).
pub struct Migration<'a> {
    pub new_home: &'a str,
    pub timestamp: i64,
    pub signature: &'a [u8],
}

/// Moves the user's home if `migration` is newer than any applied. One conditional update, so
/// concurrent moves can never apply out of order; false when it is not newer.
pub async fn apply_migration(
    conn: &impl ConnectionTrait,
    user_id: &str,
    migration: &Migration<'_>,
    kind: AccountKind,
    verification: Verification,
    now_ms: i64,
) -> Result<bool, DbErr> {
    let applied = account::Entity::update_many()
        .col_expr(account::Column::HomeServer, migration.new_home.into())
        .col_expr(account::Column::Kind, kind.as_str().into())
        .col_expr(account::Column::Verification, verification.as_str().into())
        .col_expr(
            account::Column::MigrationTimestamp,
            migration.timestamp.into(),
        )
        .col_expr(
            account::Column::MigrationSignature,
            migration.signature.to_vec().into(),
        )
        .col_expr(account::Column::UpdatedAt, now_ms.into())
        .filter(account::Column::UserId.eq(user_id))
        .filter(
            Condition::any()
                .add(account::Column::MigrationTimestamp.is_null())
                .add(account::Column::MigrationTimestamp.lt(migration.timestamp)),
        )
        .exec(conn)
        .await?;
    Ok(applied.rows_affected == 1)
}

/// Shadow accounts seen since `seen_after` whose last confirmation is older than `stale_before`
/// and whose last refresh was not queued after `stale_before`.
pub async fn shadows_due(
    conn: &impl ConnectionTrait,
    seen_after: i64,
    stale_before: i64,
    limit: u64,
) -> Result<Vec<(String, String)>, DbErr> {
    let stale = |column: account::Column| {
        Condition::any()
            .add(column.is_null())
            .add(column.lt(stale_before))
    };
    Ok(account::Entity::find()
        // Rejected ones too: a home server restored from backup may know them again.
        .filter(account::Column::Kind.eq(AccountKind::Shadow.as_str()))
        .filter(account::Column::LastSeenAt.gt(seen_after))
        .filter(stale(account::Column::VerifiedAt))
        .filter(stale(account::Column::RefreshQueuedAt))
        .order_by_asc(account::Column::LastSeenAt)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|m| (m.user_id, m.home_server))
        .collect())
}

/// Whether a refresh of the user was queued after `since` and is not answered yet.
pub async fn refresh_outstanding(
    conn: &impl ConnectionTrait,
    user_id: &str,
    since: i64,
) -> Result<bool, DbErr> {
    Ok(account::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .is_some_and(|m| {
            m.refresh_queued_at.is_some_and(|queued| {
                queued > since && m.verified_at.is_none_or(|verified| verified < queued)
            })
        }))
}

pub async fn mark_refresh_queued(
    conn: &impl ConnectionTrait,
    user_id: &str,
    now_ms: i64,
) -> Result<(), DbErr> {
    account::Entity::update_many()
        .col_expr(account::Column::RefreshQueuedAt, now_ms.into())
        .filter(account::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Every revocation statement of the user, as received.
pub async fn revocation_statements(
    conn: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, DbErr> {
    Ok(device_revocation::Entity::find()
        .filter(device_revocation::Column::UserId.eq(user_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.statement_body, r.statement_signature))
        .collect())
}

/// A delegation token issued to `audience`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub token_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Whether token `token_id` was issued to `audience` for the user and is not revoked.
pub async fn delegation_valid(
    conn: &impl ConnectionTrait,
    token_id: &str,
    user_id: &str,
    audience: &str,
    now: i64,
) -> Result<bool, DbErr> {
    Ok(delegation_token::Entity::find_by_id(token_id)
        .one(conn)
        .await?
        .is_some_and(|t| {
            t.user_id == user_id
                && t.audience == audience
                && t.revoked_at.is_none()
                && t.expires_at > now
        }))
}

/// Whether `audience` may not get a token for the user now (a propagated ban revoked it).
pub async fn delegation_suppressed(
    conn: &impl ConnectionTrait,
    user_id: &str,
    audience: &str,
    now: i64,
) -> Result<bool, DbErr> {
    Ok(
        delegation_suppression::Entity::find_by_id((user_id.to_owned(), audience.to_owned()))
            .one(conn)
            .await?
            .is_some_and(|s| s.until > now),
    )
}

/// The token issued to `audience` within the last day if there is one (so repeated
/// VerifyUsers do not pile up tokens), else a new one valid `lifetime_secs`.
pub async fn delegation_for(
    conn: &impl ConnectionTrait,
    user_id: &str,
    audience: &str,
    now: i64,
    lifetime_secs: i64,
) -> Result<Delegation, DbErr> {
    let recent = delegation_token::Entity::find()
        .filter(delegation_token::Column::UserId.eq(user_id))
        .filter(delegation_token::Column::Audience.eq(audience))
        .filter(delegation_token::Column::RevokedAt.is_null())
        .filter(delegation_token::Column::IssuedAt.gt(now - 86_400))
        .order_by_desc(delegation_token::Column::IssuedAt)
        .one(conn)
        .await?;
    if let Some(token) = recent {
        return Ok(Delegation {
            token_id: token.token_id,
            issued_at: token.issued_at,
            expires_at: token.expires_at,
        });
    }
    let token = Delegation {
        token_id: uuid::Uuid::now_v7().to_string(),
        issued_at: now,
        expires_at: now + lifetime_secs,
    };
    delegation_token::ActiveModel {
        token_id: Set(token.token_id.clone()),
        user_id: Set(user_id.to_owned()),
        audience: Set(audience.to_owned()),
        issued_at: Set(token.issued_at),
        expires_at: Set(token.expires_at),
        revoked_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(token)
}

/// Revokes every token issued to `audience` for the user, and issues none there until
/// `suppress_until`; returns how many were revoked.
pub async fn revoke_delegations(
    conn: &impl ConnectionTrait,
    user_id: &str,
    audience: &str,
    now: i64,
    suppress_until: i64,
) -> Result<u64, DbErr> {
    delegation_suppression::Entity::insert(delegation_suppression::ActiveModel {
        user_id: Set(user_id.to_owned()),
        audience: Set(audience.to_owned()),
        until: Set(suppress_until),
    })
    .on_conflict(
        OnConflict::columns([
            delegation_suppression::Column::UserId,
            delegation_suppression::Column::Audience,
        ])
        .update_column(delegation_suppression::Column::Until)
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(delegation_token::Entity::update_many()
        .col_expr(delegation_token::Column::RevokedAt, now.into())
        .filter(delegation_token::Column::UserId.eq(user_id))
        .filter(delegation_token::Column::Audience.eq(audience))
        .filter(delegation_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

pub struct BanNotice<'a> {
    pub user_id: &'a str,
    pub origin: &'a str,
    pub guild_id: &'a str,
    pub guild_name: &'a str,
    pub reason: &'a str,
    pub banned_at: i64,
}

/// Ban notices kept per user and reporting server.
pub const MAX_BAN_NOTICES_PER_ORIGIN: u64 = 100;

/// Stores a ban notification once; false when it was already there, or the user already has
/// `MAX_BAN_NOTICES_PER_ORIGIN` from that server.
pub async fn record_ban(
    conn: &impl ConnectionTrait,
    notice: &BanNotice<'_>,
    now_ms: i64,
) -> Result<bool, DbErr> {
    use sea_orm::PaginatorTrait;
    let stored = ban_notification::Entity::find()
        .filter(ban_notification::Column::UserId.eq(notice.user_id))
        .filter(ban_notification::Column::Origin.eq(notice.origin))
        .count(conn)
        .await?;
    if stored >= MAX_BAN_NOTICES_PER_ORIGIN {
        return Ok(false);
    }
    let inserted = ban_notification::Entity::insert(ban_notification::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(notice.user_id.to_owned()),
        origin: Set(notice.origin.to_owned()),
        guild_id: Set(notice.guild_id.to_owned()),
        guild_name: Set(notice.guild_name.to_owned()),
        reason: Set(notice.reason.to_owned()),
        banned_at: Set(notice.banned_at),
        received_at: Set(now_ms),
    })
    .on_conflict(
        OnConflict::columns([
            ban_notification::Column::UserId,
            ban_notification::Column::Origin,
            ban_notification::Column::GuildId,
            ban_notification::Column::BannedAt,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted == 1)
}
