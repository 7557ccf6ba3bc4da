//! The server's keys: a session key that signs access tokens and a server key for
//! server-to-server calls and push delegation tokens (PROTOCOL.md section 2). Keys live in the
//! identity schema so every replica signs with the same ones; they rotate after the configured
//! age, and a retired key stays published until what it signed has expired.

use std::{
    sync::{Mutex, RwLock},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sea_orm::{ConnectionTrait, DbErr};
use sha2::{Digest, Sha256};

use crate::store::keys::{self, StoredKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Signs access tokens.
    Session,
    /// Signs server-to-server calls and push delegation tokens.
    Server,
}

impl KeyPurpose {
    fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::Session => "session",
            KeyPurpose::Server => "server",
        }
    }
}

/// A public key as GetServerInfo publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub key_id: String,
    pub public_key: [u8; 32],
    pub valid_from_ms: i64,
    pub valid_until_ms: Option<i64>,
}

#[derive(Default)]
struct Loaded {
    keys: Vec<StoredKey>,
}

impl Loaded {
    /// The newest unretired key of a purpose.
    fn current(&self, purpose: KeyPurpose) -> Option<&StoredKey> {
        self.keys
            .iter()
            .filter(|k| k.purpose == purpose.as_str() && k.retired_at.is_none())
            .max_by_key(|k| k.created_at)
    }
}

pub struct KeyRing {
    loaded: RwLock<Loaded>,
    last_reload: Mutex<Option<Instant>>,
    rotation: Duration,
    /// How long a retired key stays published, per purpose.
    session_retention: Duration,
    server_retention: Duration,
}

fn key_id(public: &[u8; 32]) -> String {
    let digest = Sha256::digest(public);
    format!("ed25519:{}", &URL_SAFE_NO_PAD.encode(digest)[..8])
}

fn generate(purpose: KeyPurpose, now_ms: i64) -> StoredKey {
    let mut secret = [0u8; 32];
    // getrandom only fails when the OS has no entropy source; nothing can run then.
    getrandom::getrandom(&mut secret).expect("operating system random source");
    let public = SigningKey::from_bytes(&secret).verifying_key().to_bytes();
    StoredKey {
        key_id: key_id(&public),
        purpose: purpose.as_str().to_owned(),
        secret,
        public,
        created_at: now_ms,
        retired_at: None,
        publish_until: None,
    }
}

impl KeyRing {
    pub fn new(rotation: Duration, access_token_ttl: Duration) -> Self {
        Self {
            loaded: RwLock::default(),
            last_reload: Mutex::new(None),
            rotation,
            // Access tokens live access_token_ttl; delegation tokens 30 days.
            session_retention: access_token_ttl + Duration::from_secs(300),
            server_retention: Duration::from_secs(31 * 86_400),
        }
    }

    /// Loads the published keys, creating or rotating the current ones as needed. Run at start
    /// and periodically, so every replica sees rotations done by the others.
    pub async fn refresh(&self, conn: &impl ConnectionTrait, now_ms: i64) -> Result<(), DbErr> {
        let published = keys::published(conn, now_ms).await?;
        let mut changed = false;
        for purpose in [KeyPurpose::Session, KeyPurpose::Server] {
            let retention = match purpose {
                KeyPurpose::Session => self.session_retention,
                KeyPurpose::Server => self.server_retention,
            };
            let publish_until = now_ms + retention.as_millis() as i64;
            let mut current: Vec<&StoredKey> = published
                .iter()
                .filter(|k| k.purpose == purpose.as_str() && k.retired_at.is_none())
                .collect();
            current.sort_by_key(|k| k.created_at);
            // Replicas starting together may each have created a key: keep the newest signing.
            let newest = current.pop();
            for extra in current {
                keys::retire(conn, &extra.key_id, now_ms, publish_until).await?;
                changed = true;
            }
            let due =
                newest.is_none_or(|k| now_ms - k.created_at >= self.rotation.as_millis() as i64);
            if !due {
                continue;
            }
            if let Some(old) = newest {
                keys::retire(conn, &old.key_id, now_ms, publish_until).await?;
                tracing::info!(key_id = %old.key_id, purpose = purpose.as_str(), "key retired");
            }
            let key = generate(purpose, now_ms);
            keys::insert(conn, &key).await?;
            tracing::info!(key_id = %key.key_id, purpose = purpose.as_str(), "key created");
            changed = true;
        }
        let published = if changed {
            keys::published(conn, now_ms).await?
        } else {
            published
        };
        self.store(published);
        Ok(())
    }

    /// Reloads the published keys without rotating, at most once a second: a token signed by a
    /// key another replica just created must not wait for the next periodic refresh.
    pub async fn reload(&self, conn: &impl ConnectionTrait, now_ms: i64) -> Result<(), DbErr> {
        {
            let mut last = self.last_reload.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
                return Ok(());
            }
            *last = Some(Instant::now());
        }
        let published = keys::published(conn, now_ms).await?;
        self.store(published);
        Ok(())
    }

    fn store(&self, published: Vec<StoredKey>) {
        let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        loaded.keys = published;
    }

    /// The key that signs now, with its id.
    pub fn signer(&self, purpose: KeyPurpose) -> Option<(String, SigningKey)> {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        loaded
            .current(purpose)
            .map(|k| (k.key_id.clone(), SigningKey::from_bytes(&k.secret)))
    }

    /// A published key of `purpose` by id (current or retired but still valid).
    pub fn verifying_key(&self, purpose: KeyPurpose, key_id: &str) -> Option<VerifyingKey> {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        loaded
            .keys
            .iter()
            .find(|k| k.purpose == purpose.as_str() && k.key_id == key_id)
            .and_then(|k| VerifyingKey::from_bytes(&k.public).ok())
    }

    pub fn published(&self, purpose: KeyPurpose) -> Vec<PublishedKey> {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        loaded
            .keys
            .iter()
            .filter(|k| k.purpose == purpose.as_str())
            .map(|k| PublishedKey {
                key_id: k.key_id.clone(),
                public_key: k.public,
                valid_from_ms: k.created_at,
                valid_until_ms: k.publish_until,
            })
            .collect()
    }
}
