//! Other servers' published keys, for the services of this homeserver that verify inbound
//! server calls (through `FederationInternalService.GetServerKeys`). Fetched from the origin's
//! GetServerInfo, kept an hour, fetched again early when a caller needs a key id the cache does
//! not have (a rotation), but at most once per 30 s per origin so a forger cannot make us
//! hammer anyone.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use mzchat_platform::Origin;
use mzchat_proto::identity::PublicKey;
use tonic::Status;

use crate::outbound::{CallError, Outbound};

const MAX_AGE: Duration = Duration::from_secs(3600);
const REFETCH_AFTER: Duration = Duration::from_secs(30);

struct Entry {
    keys: Vec<PublicKey>,
    fetched: Instant,
}

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Origin, Entry>>,
}

impl KeyCache {
    fn cached(&self, origin: &Origin, key_id: &str) -> (Option<Vec<PublicKey>>, bool) {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = entries.get(origin) else {
            return (None, true);
        };
        let has_key = key_id.is_empty() || entry.keys.iter().any(|k| k.key_id == key_id);
        let age = entry.fetched.elapsed();
        let fetch = age >= MAX_AGE || (!has_key && age >= REFETCH_AFTER);
        (Some(entry.keys.clone()), fetch)
    }

    pub async fn get(
        &self,
        outbound: &Outbound,
        origin: &Origin,
        key_id: &str,
    ) -> Result<Vec<PublicKey>, Status> {
        let (cached, fetch) = self.cached(origin, key_id);
        if !fetch && let Some(keys) = cached {
            return Ok(keys);
        }
        match outbound.server_info(origin).await {
            Ok(info) if info.origin == origin.as_str() => {
                let keys = info.server_keys;
                self.entries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(
                        origin.clone(),
                        Entry {
                            keys: keys.clone(),
                            fetched: Instant::now(),
                        },
                    );
                Ok(keys)
            }
            Ok(info) => Err(Status::unavailable(format!(
                "{origin} describes itself as {}; its keys are not trusted",
                info.origin
            ))),
            Err(err) => {
                let reason = match err {
                    CallError::Remote(status) => status.message().to_owned(),
                    CallError::Local(reason) => reason,
                };
                tracing::warn!(%origin, %reason, "cannot fetch server keys");
                // A stale copy beats none while the origin is unreachable.
                cached.ok_or_else(|| {
                    Status::unavailable(format!("cannot fetch the keys of {origin}: {reason}"))
                })
            }
        }
    }
}
