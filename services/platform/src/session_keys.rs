//! Verifying access tokens in services other than identity: the session public keys come from
//! identity's ServerInfo, cached, and fetched again when a token names a key not seen yet.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use ed25519_dalek::VerifyingKey;
use mzchat_proto::identity::{
    GetServerInfoRequest, server_info_service_client::ServerInfoServiceClient,
};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::session_token::{self, Claims, TokenError};

/// At most one fetch per this interval, however many unknown keys show up.
const MIN_FETCH_INTERVAL: Duration = Duration::from_secs(1);
/// Tokens whose signature was checked, remembered so a client's every call does not verify an
/// Ed25519 signature again; emptied when full.
const VERIFIED_CAPACITY: usize = 4096;

pub struct SessionKeys {
    client: ServerInfoServiceClient<Channel>,
    issuer: String,
    keys: RwLock<HashMap<String, VerifyingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    /// SHA-256 of a token -> its claims, for tokens that verified.
    verified: RwLock<HashMap<[u8; 32], Claims>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionKeysError {
    #[error("identity url {0}: {1}")]
    Url(String, String),
}

impl SessionKeys {
    /// Keys of the identity service at `identity_url`, for tokens issued by `issuer` (this
    /// server's origin).
    pub fn new(identity_url: &str, issuer: &str) -> Result<Self, SessionKeysError> {
        let channel = tonic::transport::Endpoint::from_shared(identity_url.to_owned())
            .map_err(|e| SessionKeysError::Url(identity_url.to_owned(), e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Self {
            client: ServerInfoServiceClient::new(channel),
            issuer: issuer.to_owned(),
            keys: RwLock::default(),
            last_fetch: Mutex::new(None),
            verified: RwLock::default(),
        })
    }

    /// Verifies an access token of this server.
    /// The claims of the request's bearer token: a valid access token of this server, else
    /// UNAUTHENTICATED saying what is wrong.
    pub async fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Claims, tonic::Status> {
        let token = session_token::bearer(request.metadata()).ok_or_else(|| {
            tonic::Status::unauthenticated(
                "this call needs an access token (authorization: Bearer <jwt>)",
            )
        })?;
        let now = crate::db::now_millis() / 1000;
        self.verify(token, now)
            .await
            .map_err(|e| tonic::Status::unauthenticated(e.to_string()))
    }

    pub async fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let known = read(&self.verified).get(&digest).cloned();
        if let Some(claims) = known {
            // Signature and issuer were checked; expiry depends on the time.
            return if now >= claims.exp {
                Err(TokenError::Expired)
            } else {
                Ok(claims)
            };
        }
        let check = || session_token::verify(token, |kid| self.key(kid), &self.issuer, now);
        let claims = match check() {
            Err(TokenError::UnknownKey) => {
                self.fetch().await;
                check()
            }
            other => other,
        }?;
        let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(digest, claims.clone());
        Ok(claims)
    }

    fn key(&self, kid: &str) -> Option<VerifyingKey> {
        read(&self.keys).get(kid).copied()
    }

    async fn fetch(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < MIN_FETCH_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        match self
            .client
            .clone()
            .get_server_info(GetServerInfoRequest {})
            .await
        {
            Ok(info) => {
                let keys: HashMap<String, VerifyingKey> = info
                    .into_inner()
                    .session_keys
                    .into_iter()
                    .filter_map(|k| {
                        let bytes: [u8; 32] = k.public_key.as_slice().try_into().ok()?;
                        Some((k.key_id, VerifyingKey::from_bytes(&bytes).ok()?))
                    })
                    .collect();
                let mut known = self.keys.write().unwrap_or_else(|e| e.into_inner());
                if *known != keys {
                    // A key gone from identity must stop vouching for tokens already seen.
                    self.verified
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear();
                }
                *known = keys;
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "cannot fetch session keys")
            }
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::session_token::tests::{claims, key};

    #[tokio::test]
    async fn a_remembered_token_still_expires_and_a_forged_one_is_not_remembered() {
        let keys = SessionKeys::new("http://127.0.0.1:1", "https://a.example").expect("keys");
        keys.keys
            .write()
            .expect("lock")
            .insert("k1".into(), key().verifying_key());
        let token = session_token::encode(&claims(), "k1", &key()).expect("encode");
        assert_eq!(keys.verify(&token, 2_000).await, Ok(claims()));
        assert_eq!(read(&keys.verified).len(), 1);
        assert_eq!(keys.verify(&token, 2_001).await, Ok(claims()));
        assert_eq!(keys.verify(&token, 4_600).await, Err(TokenError::Expired));
        let forged = session_token::encode(&claims(), "k1", &SigningKey::from_bytes(&[1; 32]))
            .expect("encode");
        assert_eq!(
            keys.verify(&forged, 2_000).await,
            Err(TokenError::Signature)
        );
        assert_eq!(read(&keys.verified).len(), 1);
    }
}
