//! Where each device wants its pushes.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::OnConflict,
};

use super::entity::{distributor, fcm_token, revoked_device};

pub use distributor::Model as Distributor;

/// `deliveries.transport` of an HTTP push endpoint (UnifiedPush, ntfy, Web Push).
pub const ENDPOINT: &str = "endpoint";
/// `deliveries.transport` of an FCM registration token.
pub const FCM: &str = "fcm";

/// How one device is pushed: an HTTP endpoint (with RFC 8291 keys when it gave them) or an FCM
/// registration token, in `address`.
#[derive(Debug, Clone)]
pub struct Route {
    pub device_id: String,
    pub transport: &'static str,
    pub address: String,
    pub p256dh: Option<Vec<u8>>,
    pub auth: Option<Vec<u8>>,
}

/// Every device of the user that has a way to be pushed.
pub async fn routes_of(conn: &impl ConnectionTrait, user_id: &str) -> Result<Vec<Route>, DbErr> {
    let mut routes: Vec<Route> = distributors_of(conn, user_id)
        .await?
        .into_iter()
        .map(|d| Route {
            device_id: d.device_id,
            transport: ENDPOINT,
            address: d.endpoint_url,
            p256dh: d.p256dh,
            auth: d.auth,
        })
        .collect();
    let tokens = fcm_token::Entity::find()
        .filter(fcm_token::Column::UserId.eq(user_id))
        .all(conn)
        .await?;
    routes.extend(tokens.into_iter().map(|t| Route {
        device_id: t.device_id,
        transport: FCM,
        address: t.token,
        p256dh: None,
        auth: None,
    }));
    Ok(routes)
}

/// Sets the device's distributor; it replaces an FCM token (a device is pushed one way).
pub async fn put_distributor(conn: &impl ConnectionTrait, d: &Distributor) -> Result<(), DbErr> {
    remove_fcm_token(conn, &d.user_id, &d.device_id).await?;
    distributor::Entity::insert(distributor::ActiveModel {
        user_id: Set(d.user_id.clone()),
        device_id: Set(d.device_id.clone()),
        endpoint_url: Set(d.endpoint_url.clone()),
        kind: Set(d.kind),
        p256dh: Set(d.p256dh.clone()),
        auth: Set(d.auth.clone()),
        created_at: Set(d.created_at),
    })
    .on_conflict(
        OnConflict::columns([distributor::Column::UserId, distributor::Column::DeviceId])
            .update_columns([
                distributor::Column::EndpointUrl,
                distributor::Column::Kind,
                distributor::Column::P256dh,
                distributor::Column::Auth,
                distributor::Column::CreatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn distributors_of(
    conn: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<Distributor>, DbErr> {
    distributor::Entity::find()
        .filter(distributor::Column::UserId.eq(user_id))
        .order_by_asc(distributor::Column::DeviceId)
        .all(conn)
        .await
}

pub async fn remove_distributor(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
) -> Result<(), DbErr> {
    distributor::Entity::delete_by_id((user_id.to_owned(), device_id.to_owned()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Sets the device's FCM token; it replaces a distributor (a device is pushed one way).
pub async fn put_fcm_token(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
    token: &str,
    now_ms: i64,
) -> Result<(), DbErr> {
    remove_distributor(conn, user_id, device_id).await?;
    fcm_token::Entity::insert(fcm_token::ActiveModel {
        user_id: Set(user_id.to_owned()),
        device_id: Set(device_id.to_owned()),
        token: Set(token.to_owned()),
        created_at: Set(now_ms),
    })
    .on_conflict(
        OnConflict::columns([fcm_token::Column::UserId, fcm_token::Column::DeviceId])
            .update_columns([fcm_token::Column::Token, fcm_token::Column::CreatedAt])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn remove_fcm_token(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
) -> Result<(), DbErr> {
    fcm_token::Entity::delete_by_id((user_id.to_owned(), device_id.to_owned()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Whether identity revoked the device.
pub async fn is_revoked(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
) -> Result<bool, DbErr> {
    Ok(
        revoked_device::Entity::find_by_id((user_id.to_owned(), device_id.to_owned()))
            .one(conn)
            .await?
            .is_some(),
    )
}

/// Forgets everything registered for a revoked device, and remembers the revocation; returns
/// how many registrations.
pub async fn forget_device(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
    now_ms: i64,
) -> Result<u64, DbErr> {
    revoked_device::Entity::insert(revoked_device::ActiveModel {
        user_id: Set(user_id.to_owned()),
        device_id: Set(device_id.to_owned()),
        revoked_at: Set(now_ms),
    })
    .on_conflict(
        OnConflict::columns([
            revoked_device::Column::UserId,
            revoked_device::Column::DeviceId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    let key = (user_id.to_owned(), device_id.to_owned());
    let a = distributor::Entity::delete_by_id(key.clone())
        .exec(conn)
        .await?;
    let b = fcm_token::Entity::delete_by_id(key).exec(conn).await?;
    Ok(a.rows_affected + b.rows_affected)
}

/// Forgets a device's route if it is still `address` (its push service said the endpoint or
/// token is gone; a newer registration stays).
pub async fn forget_route(
    conn: &impl ConnectionTrait,
    user_id: &str,
    device_id: &str,
    transport: &str,
    address: &str,
) -> Result<(), DbErr> {
    if transport == FCM {
        fcm_token::Entity::delete_many()
            .filter(fcm_token::Column::UserId.eq(user_id))
            .filter(fcm_token::Column::DeviceId.eq(device_id))
            .filter(fcm_token::Column::Token.eq(address))
            .exec(conn)
            .await?;
    } else {
        distributor::Entity::delete_many()
            .filter(distributor::Column::UserId.eq(user_id))
            .filter(distributor::Column::DeviceId.eq(device_id))
            .filter(distributor::Column::EndpointUrl.eq(address))
            .exec(conn)
            .await?;
    }
    Ok(())
}
