//! Buckets shared by every replica, in a NATS key-value bucket: each caller's state is one
//! value, changed by compare-and-set on its revision so concurrent replicas never both spend
//! the same token. Kept in memory storage: losing it on a NATS restart only refills buckets.
//!
//! The last revision seen of each key is remembered, so a caller served by one replica costs
//! one round trip (the update); a stale revision costs a read and a retry.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use async_nats::jetstream::{
    self,
    kv::{self, CreateErrorKind, Operation, UpdateErrorKind},
    stream::{self, DiscardPolicy, StorageType},
};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::OnceCell;

use super::{
    Buckets, Rule, StoreError,
    gcra::{self, Decision},
};

/// Compare-and-set attempts before a caller's key counts as too contended to decide.
const ATTEMPTS: usize = 4;
/// Memory the bucket may take on the NATS server (some 300,000 callers).
const MAX_BUCKET_BYTES: i64 = 64 * 1024 * 1024;
/// Remembered revisions above this are dropped and read again when needed.
const MAX_REMEMBERED: usize = 100_000;

pub struct KvBuckets {
    js: jetstream::Context,
    bucket: String,
    stream: stream::Config,
    store: OnceCell<kv::Store>,
    /// Key -> (revision, full_at) as last written or read here.
    seen: Mutex<HashMap<String, (u64, Option<u64>)>>,
}

enum Attempt {
    Done(u64),
    Conflict,
}

impl KvBuckets {
    /// `bucket` must be a valid stream name; callers are forgotten `max_age` after their last
    /// allowed call (the longest period of any rule).
    pub fn new(
        client: async_nats::Client,
        bucket: &str,
        max_age: Duration,
        replicas: usize,
    ) -> Self {
        let mut js = jetstream::new(client);
        // Waiting longer than this would hurt the call more than an unshared decision.
        js.set_timeout(Duration::from_millis(500));
        // The stream of a key-value bucket, declared as the bus declares its streams: the
        // client's own bucket creation asks for account details NATS 2.9 does not send.
        let stream = stream::Config {
            name: format!("KV_{bucket}"),
            description: Some("mzchat rate limit buckets".into()),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            // Headers count too (the expected revision); values are a number.
            max_message_size: 1024,
            storage: StorageType::Memory,
            // A flood from very many addresses fills it; writes then fail and every process
            // decides on its own until entries expire, instead of growing NATS's memory.
            max_bytes: MAX_BUCKET_BYTES,
            num_replicas: replicas.max(1),
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: DiscardPolicy::New,
            ..Default::default()
        };
        Self {
            js,
            bucket: bucket.to_owned(),
            stream,
            store: OnceCell::new(),
            seen: Mutex::default(),
        }
    }

    async fn store(&self) -> Result<&kv::Store, StoreError> {
        self.store
            .get_or_try_init(|| async {
                let failed =
                    |e: &dyn std::fmt::Display| StoreError(format!("rate limit bucket: {e}"));
                self.js
                    .get_or_create_stream(self.stream.clone())
                    .await
                    .map_err(|e| failed(&e))?;
                self.js
                    .get_key_value(&self.bucket)
                    .await
                    .map_err(|e| failed(&e))
            })
            .await
    }

    fn remembered(&self, key: &str) -> Option<(u64, Option<u64>)> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }

    fn remember(&self, key: &str, revision: u64, full_at: Option<u64>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() > MAX_REMEMBERED {
            seen.clear();
        }
        seen.insert(key.to_owned(), (revision, full_at));
    }

    async fn read(&self, store: &kv::Store, key: &str) -> Result<(u64, Option<u64>), StoreError> {
        let entry = store
            .entry(key)
            .await
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(match entry {
            Some(e) if e.operation == Operation::Put => (e.revision, parse(&e.value)),
            Some(e) => (e.revision, None),
            None => (0, None),
        })
    }

    async fn write(
        &self,
        store: &kv::Store,
        key: &str,
        revision: u64,
        full_at: u64,
    ) -> Result<Attempt, StoreError> {
        let value = Bytes::from(full_at.to_string());
        if revision == 0 {
            return match store.create(key, value).await {
                Ok(revision) => Ok(Attempt::Done(revision)),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(Attempt::Conflict),
                Err(e) => Err(StoreError(e.to_string())),
            };
        }
        match store.update(key, value, revision).await {
            Ok(revision) => Ok(Attempt::Done(revision)),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(Attempt::Conflict),
            Err(e) => Err(StoreError(e.to_string())),
        }
    }
}

fn parse(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[async_trait]
impl Buckets for KvBuckets {
    async fn take(&self, key: &str, rule: Rule, now: u64) -> Result<Decision, StoreError> {
        let store = self.store().await?;
        let mut known = self.remembered(key);
        for _ in 0..ATTEMPTS {
            let (revision, full_at) = match known.take() {
                Some(state) => state,
                None => self.read(store, key).await?,
            };
            let decision = gcra::decide(full_at, now, rule);
            let Decision::Allow { full_at: next } = decision else {
                self.remember(key, revision, full_at);
                return Ok(decision);
            };
            match self.write(store, key, revision, next).await? {
                Attempt::Done(revision) => {
                    self.remember(key, revision, Some(next));
                    return Ok(decision);
                }
                Attempt::Conflict => continue,
            }
        }
        // Replicas kept changing this one caller's state under us: it is calling very fast.
        Ok(Decision::Refuse {
            retry_after: rule.interval(),
        })
    }
}
