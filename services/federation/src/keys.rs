//! Other servers' published keys, for the services of this homeserver that verify inbound
//! server calls (through `FederationInternalService.GetServerKeys`). Anyone can name any origin
//! in an unsigned call, so fetching is guarded:
//! - keys are kept an hour, and fetched again early only for a key id the cache lacks (a
//!   rotation), at most once per 5 s per origin, failures included;
//! - one fetch per origin at a time;
//! - callers learn only that keys are unavailable, never why (no network probing through us);
//! - the cache holds at most `MAX_ORIGINS` origins.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mzchat_platform::Origin;
use mzchat_proto::identity::PublicKey;
use tonic::Status;

use crate::outbound::{CallError, Outbound};

const MAX_AGE: Duration = Duration::from_secs(3600);
const REFETCH_AFTER: Duration = Duration::from_secs(5);
const MAX_ORIGINS: usize = 10_000;
/// Keys kept per origin, and the longest key id taken.
const MAX_KEYS: usize = 16;
const MAX_KEY_ID_BYTES: usize = 64;

struct Entry {
    /// The last keys fetched successfully.
    keys: Option<Vec<PublicKey>>,
    /// The last fetch attempt, successful or not.
    attempted: Instant,
    fetched: Option<Instant>,
}

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Origin, Entry>>,
    fetching: Mutex<HashMap<Origin, Arc<tokio::sync::Mutex<()>>>>,
}

fn unavailable(origin: &Origin) -> Status {
    Status::unavailable(format!("the keys of {origin} are not available right now"))
}

impl KeyCache {
    /// What the cache has, and whether it is time to fetch again.
    fn cached(&self, origin: &Origin, key_id: &str) -> (Option<Vec<PublicKey>>, bool) {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = entries.get(origin) else {
            return (None, true);
        };
        let recently_tried = entry.attempted.elapsed() < REFETCH_AFTER;
        let has_key = entry
            .keys
            .as_ref()
            .is_some_and(|keys| key_id.is_empty() || keys.iter().any(|k| k.key_id == key_id));
        let fresh = entry.fetched.is_some_and(|at| at.elapsed() < MAX_AGE);
        let usable = has_key && fresh;
        (entry.keys.clone(), !(recently_tried || usable))
    }

    fn store(&self, origin: &Origin, keys: Option<Vec<PublicKey>>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ORIGINS && !entries.contains_key(origin) {
            entries.retain(|_, e| e.fetched.is_some_and(|at| at.elapsed() < MAX_AGE));
            if entries.len() >= MAX_ORIGINS {
                entries.clear();
            }
        }
        let now = Instant::now();
        let entry = entries.entry(origin.clone()).or_insert(Entry {
            keys: None,
            attempted: now,
            fetched: None,
        });
        entry.attempted = now;
        if keys.is_some() {
            entry.keys = keys;
            entry.fetched = Some(now);
        }
    }

    fn fetch_lock(&self, origin: &Origin) -> Arc<tokio::sync::Mutex<()>> {
        let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        if fetching.len() >= MAX_ORIGINS {
            fetching.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        fetching.entry(origin.clone()).or_default().clone()
    }

    pub async fn get(
        &self,
        outbound: &Outbound,
        origin: &Origin,
        key_id: &str,
    ) -> Result<Vec<PublicKey>, Status> {
        let (cached, fetch) = self.cached(origin, key_id);
        if !fetch {
            return cached.ok_or_else(|| unavailable(origin));
        }
        let lock = self.fetch_lock(origin);
        let _one_at_a_time = lock.lock().await;
        // Another caller may have fetched while this one waited.
        let (cached, fetch) = self.cached(origin, key_id);
        if !fetch {
            return cached.ok_or_else(|| unavailable(origin));
        }
        match outbound.server_info(origin).await {
            Ok(info) if info.origin == origin.as_str() => {
                // A server publishes its current key and a few retired ones.
                let keys: Vec<PublicKey> = info
                    .server_keys
                    .into_iter()
                    .filter(|k| k.key_id.len() <= MAX_KEY_ID_BYTES)
                    .take(MAX_KEYS)
                    .collect();
                self.store(origin, Some(keys.clone()));
                Ok(keys)
            }
            answer => {
                let reason = match answer {
                    Ok(info) => format!("it describes itself as {}", info.origin),
                    Err(CallError::Remote(status)) => status.message().to_owned(),
                    Err(CallError::Local(reason)) => reason,
                };
                tracing::warn!(%origin, %reason, "cannot fetch server keys");
                self.store(origin, None);
                // A stale copy beats none while the origin is unreachable.
                cached.ok_or_else(|| unavailable(origin))
            }
        }
    }
}
