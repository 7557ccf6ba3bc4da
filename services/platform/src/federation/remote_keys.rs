//! `KeyResolver` over federation-sync's internal API, with a short local cache so that a burst
//! of calls from one server costs one internal lookup.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use ed25519_dalek::VerifyingKey;
use mzchat_proto::federation::{
    GetServerKeysRequest, federation_internal_service_client::FederationInternalServiceClient,
};
use tonic::{Status, transport::Channel};

use super::{KeyResolver, ServerKey};
use crate::{Origin, grpc::InternalAuth};

const FRESH_FOR: Duration = Duration::from_secs(60);
/// Origins whose keys are kept; beyond this, entries past their freshness go (callers name
/// origins before they are verified, so the map must not grow with them).
const MAX_ORIGINS: usize = 10_000;
/// Keys kept per origin (a server publishes its current key and a few retired ones).
const MAX_KEYS: usize = 16;

pub struct RemoteKeys {
    client: FederationInternalServiceClient<Channel>,
    auth: InternalAuth,
    cache: Mutex<HashMap<Origin, (Instant, Vec<ServerKey>)>>,
}

impl RemoteKeys {
    /// A lazily connecting client of federation-sync at `url`.
    pub fn new(url: &str, auth: InternalAuth) -> Result<Self, String> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("federation-sync url {url}: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .connect_lazy();
        Ok(Self {
            client: FederationInternalServiceClient::new(channel),
            auth,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, origin: &Origin, key_id: &str) -> Option<Vec<ServerKey>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (at, keys) = cache.get(origin)?;
        (at.elapsed() < FRESH_FOR && keys.iter().any(|k| k.key_id == key_id)).then(|| keys.clone())
    }
}

fn seconds(ts: Option<prost_types::Timestamp>) -> Option<i64> {
    ts.map(|t| t.seconds)
}

#[async_trait]
impl KeyResolver for RemoteKeys {
    async fn server_keys(&self, origin: &Origin, key_id: &str) -> Result<Vec<ServerKey>, Status> {
        if let Some(keys) = self.cached(origin, key_id) {
            return Ok(keys);
        }
        let mut request = tonic::Request::new(GetServerKeysRequest {
            origin: origin.to_string(),
            key_id: key_id.to_owned(),
        });
        self.auth.attach(&mut request);
        let response = self
            .client
            .clone()
            .get_server_keys(request)
            .await
            .map_err(|status| match status.code() {
                tonic::Code::PermissionDenied => status,
                _ => Status::unavailable(format!(
                    "cannot fetch the keys of {origin} right now: {}",
                    status.message()
                )),
            })?;
        let keys: Vec<ServerKey> = response
            .into_inner()
            .server_keys
            .into_iter()
            .filter_map(|k| {
                let bytes: [u8; 32] = k.public_key.as_slice().try_into().ok()?;
                Some(ServerKey {
                    key_id: k.key_id,
                    key: VerifyingKey::from_bytes(&bytes).ok()?,
                    valid_from: seconds(k.valid_from).unwrap_or(0),
                    valid_until: seconds(k.valid_until),
                })
            })
            .take(MAX_KEYS)
            .collect();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_ORIGINS {
            cache.retain(|_, (at, _)| at.elapsed() < FRESH_FOR);
            if cache.len() >= MAX_ORIGINS {
                cache.clear();
            }
        }
        cache.insert(origin.clone(), (Instant::now(), keys.clone()));
        Ok(keys)
    }
}
