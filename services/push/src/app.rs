//! Registration of push endpoints (PROTOCOL.md section 9). A device registers its own endpoint
//! on its user's home server; registrations go with the device when it is revoked.

use mzchat_platform::{DomainError, ErrorKind, session_token::Claims};
use mzchat_proto::push::DistributorKind;
use sea_orm::{DatabaseConnection, TransactionTrait};

use crate::{
    endpoint::EndpointGuard,
    store::{
        deliveries,
        registrations::{self, Distributor},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("storage error")]
    Store(#[from] sea_orm::DbErr),
}

impl DomainError for PushError {
    fn kind(&self) -> ErrorKind {
        match self {
            PushError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            PushError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            PushError::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            PushError::Store(_) => ErrorKind::Internal,
        }
    }
}

pub type Result<T, E = PushError> = std::result::Result<T, E>;

/// What a device asks to register.
pub struct Registration {
    pub device_id: String,
    pub endpoint_url: String,
    pub kind: i32,
    pub p256dh: Option<Vec<u8>>,
    pub auth: Option<Vec<u8>>,
}

const MAX_FCM_TOKEN_LEN: usize = 4096;

pub struct PushApp {
    db: DatabaseConnection,
    origin: String,
    guard: EndpointGuard,
    /// Whether this server can deliver through FCM (it has a service account).
    fcm_enabled: bool,
}

impl PushApp {
    pub fn new(
        db: DatabaseConnection,
        origin: String,
        guard: EndpointGuard,
        fcm_enabled: bool,
    ) -> Self {
        Self {
            db,
            origin,
            guard,
            fcm_enabled,
        }
    }

    /// Push is registered on the home server, by the device itself.
    fn check_caller(&self, caller: &Claims, device_id: &str) -> Result<()> {
        if caller.home != self.origin {
            return Err(PushError::FailedPrecondition(format!(
                "push is registered on your home server ({}), which relays pushes from here",
                caller.home
            )));
        }
        if device_id != caller.did {
            return Err(PushError::PermissionDenied(
                "a device registers its own push endpoint (device_id must be this session's device)"
                    .into(),
            ));
        }
        Ok(())
    }

    pub async fn register_distributor(
        &self,
        caller: &Claims,
        registration: Registration,
    ) -> Result<Distributor> {
        self.check_caller(caller, &registration.device_id)?;
        self.check_not_revoked(caller).await?;
        let kind = DistributorKind::try_from(registration.kind)
            .ok()
            .filter(|k| *k != DistributorKind::Unspecified)
            .ok_or_else(|| {
                PushError::InvalidArgument("kind must be UNIFIED_PUSH, NTFY or WEB_PUSH".into())
            })?;
        let keys = match (registration.p256dh, registration.auth) {
            (Some(p256dh), Some(auth))
                if p256dh.len() == 65
                    && p256::PublicKey::from_sec1_bytes(&p256dh).is_ok()
                    && auth.len() == 16 =>
            {
                Some((p256dh, auth))
            }
            (None, None) if kind != DistributorKind::WebPush => None,
            (None, None) => {
                return Err(PushError::InvalidArgument(
                    "WEB_PUSH needs p256dh and auth".into(),
                ));
            }
            _ => {
                return Err(PushError::InvalidArgument(
                    "p256dh (65-byte uncompressed P-256 key) and auth (16 bytes) come together"
                        .into(),
                ));
            }
        };
        let endpoint = self
            .guard
            .parse(&registration.endpoint_url)
            .map_err(|e| PushError::InvalidArgument(e.to_string()))?;
        self.guard
            .resolve(&endpoint)
            .await
            .map_err(|e| PushError::InvalidArgument(e.to_string()))?;
        let (p256dh, auth) = keys.unzip();
        let distributor = Distributor {
            user_id: caller.sub.clone(),
            device_id: registration.device_id,
            endpoint_url: endpoint.url,
            kind: kind as i32,
            p256dh,
            auth,
            created_at: mzchat_platform::db::now_millis(),
        };
        // Replacing the device's FCM token and storing the distributor go together.
        let txn = self.db.begin().await?;
        registrations::put_distributor(&txn, &distributor).await?;
        txn.commit().await?;
        Ok(distributor)
    }

    pub async fn unregister_distributor(&self, caller: &Claims, device_id: &str) -> Result<()> {
        self.check_caller(caller, device_id)?;
        Ok(registrations::remove_distributor(&self.db, &caller.sub, device_id).await?)
    }

    pub async fn distributors(&self, caller: &Claims) -> Result<Vec<Distributor>> {
        self.check_caller(caller, &caller.did)?;
        Ok(registrations::distributors_of(&self.db, &caller.sub).await?)
    }

    pub async fn register_fcm_token(
        &self,
        caller: &Claims,
        device_id: &str,
        token: &str,
    ) -> Result<()> {
        self.check_caller(caller, device_id)?;
        self.check_not_revoked(caller).await?;
        if !self.fcm_enabled {
            return Err(PushError::FailedPrecondition(
                "this server cannot deliver through FCM (it has no FCM credentials); register a UnifiedPush distributor instead".into(),
            ));
        }
        if token.is_empty()
            || token.len() > MAX_FCM_TOKEN_LEN
            || token.chars().any(char::is_control)
        {
            return Err(PushError::InvalidArgument(
                "token must be a non-empty FCM registration token".into(),
            ));
        }
        let now = mzchat_platform::db::now_millis();
        let txn = self.db.begin().await?;
        registrations::put_fcm_token(&txn, &caller.sub, device_id, token, now).await?;
        Ok(txn.commit().await?)
    }

    pub async fn unregister_fcm_token(&self, caller: &Claims, device_id: &str) -> Result<()> {
        self.check_caller(caller, device_id)?;
        Ok(registrations::remove_fcm_token(&self.db, &caller.sub, device_id).await?)
    }

    /// A device was revoked: its registrations and pending pushes go, and it may not register
    /// again.
    pub async fn forget_device(&self, user_id: &str, device_id: &str) -> Result<u64> {
        let now = mzchat_platform::db::now_millis();
        let forgotten = registrations::forget_device(&self.db, user_id, device_id, now).await?;
        deliveries::drop_device(&self.db, user_id, device_id).await?;
        Ok(forgotten)
    }

    /// Registration needs a device identity has not revoked (its access token may outlive the
    /// revocation by up to an hour).
    async fn check_not_revoked(&self, caller: &Claims) -> Result<()> {
        if registrations::is_revoked(&self.db, &caller.sub, &caller.did).await? {
            return Err(PushError::PermissionDenied(
                "this device has been revoked".into(),
            ));
        }
        Ok(())
    }
}
