//! Identity's use cases: they check input, run the store in transactions, write events to the
//! outbox, and sign tokens.

mod account;
mod avatars;
mod federation;
mod mailbox;
mod session;
mod shadows;

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mzchat_platform::{
    outbox::Outbox,
    session_token::{self, Claims, TokenError},
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use sha2::{Digest, Sha256};

pub use avatars::Avatars;
pub use session::{LoginInput, SessionTokens};

use crate::{
    config::IdentityConfig,
    domain::{IdentityError, Result, unauthenticated},
    keys::{KeyPurpose, KeyRing},
    memberships::{GuildClaims, Memberships},
    store,
};

pub struct IdentityApp {
    pub(crate) db: DatabaseConnection,
    pub(crate) config: Arc<IdentityConfig>,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) outbox: Outbox,
    pub(crate) memberships: Memberships,
    pub(crate) avatars: avatars::Avatars,
    waiters: mailbox::Waiters,
}

/// The caller of an authenticated RPC.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub device_id: String,
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| IdentityError::Internal(format!("random source: {e}")))?;
    Ok(bytes)
}

pub(crate) fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl IdentityApp {
    pub fn new(
        db: DatabaseConnection,
        config: Arc<IdentityConfig>,
        keys: Arc<KeyRing>,
        outbox: Outbox,
        memberships: Memberships,
        avatars: avatars::Avatars,
    ) -> Self {
        Self {
            db,
            config,
            keys,
            outbox,
            memberships,
            avatars,
            waiters: Default::default(),
        }
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.config
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Verifies an access token of this server and that its device is still in good standing.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        let now = crate::domain::unix_now();
        let verify = || {
            session_token::verify(
                token,
                |kid| self.keys.verifying_key(KeyPurpose::Session, kid),
                self.config.server.origin.as_str(),
                now,
            )
        };
        let claims = match verify() {
            Err(TokenError::UnknownKey) => {
                // Maybe a key another replica created since our last refresh.
                self.keys
                    .reload(&self.db, mzchat_platform::db::now_millis())
                    .await?;
                verify()
            }
            other => other,
        }
        .map_err(|e| unauthenticated(e.to_string()))?;
        if store::devices::revoked_at(&self.db, &claims.sub, &claims.did)
            .await?
            .is_some()
        {
            return Err(unauthenticated("this device has been revoked"));
        }
        Ok(Caller {
            user_id: claims.sub,
            device_id: claims.did,
        })
    }

    /// The user's guilds on this server, read now (a network call: make it outside
    /// transactions).
    pub(crate) async fn guild_claims(&self, user_id: &str) -> Result<GuildClaims> {
        self.memberships.for_user(user_id).await
    }

    /// Signs an access token; it never outlives `not_after` (the device certificate's expiry).
    pub(crate) fn sign_access_token(
        &self,
        user_id: &str,
        device_id: &str,
        home: &str,
        guilds: GuildClaims,
        not_after: i64,
    ) -> Result<(String, i64)> {
        let (kid, key) = self
            .keys
            .signer(KeyPurpose::Session)
            .ok_or_else(|| IdentityError::Internal("no session key loaded".into()))?;
        let now = crate::domain::unix_now();
        let exp = (now + self.config.access_token_ttl.as_secs() as i64).min(not_after);
        let claims = Claims {
            iss: self.config.server.origin.to_string(),
            sub: user_id.to_owned(),
            did: device_id.to_owned(),
            iat: now,
            exp,
            jti: uuid::Uuid::now_v7().to_string(),
            home: home.to_owned(),
            guild_roles: guilds.guild_roles,
            permission_versions_by_guild: guilds.permission_versions,
        };
        let token = session_token::encode(&claims, &kid, &key).map_err(|e| {
            IdentityError::FailedPrecondition(format!("cannot issue a session: {e}"))
        })?;
        Ok((token, exp))
    }

    /// Starts or continues a refresh-token chain; returns the token and its expiry (ms), which
    /// never passes `not_after` (seconds: the device certificate's expiry).
    pub(crate) async fn refresh_token(
        &self,
        conn: &impl ConnectionTrait,
        family_id: &str,
        user_id: &str,
        device_id: &str,
        not_after: i64,
    ) -> Result<(String, i64)> {
        let token = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let now_ms = mzchat_platform::db::now_millis();
        let expires_at_ms = (now_ms + self.config.refresh_token_ttl.as_millis() as i64)
            .min(not_after.saturating_mul(1000));
        store::sessions::insert(
            conn,
            store::sessions::NewRefreshToken {
                token_hash: hash_token(&token),
                family_id,
                user_id,
                device_id,
                expires_at_ms,
            },
            now_ms,
        )
        .await?;
        Ok((token, expires_at_ms))
    }
}
