//! Buckets in this process's memory: all a single process needs (the embedded mode has no
//! replicas), and the fallback of the shared store while NATS cannot be reached.

use std::{collections::HashMap, sync::Mutex};

use async_trait::async_trait;

use super::{
    Buckets, Rule, StoreError,
    gcra::{self, Decision},
};

/// Above this many callers, those whose buckets are full again are forgotten.
const PRUNE_ABOVE: usize = 100_000;

#[derive(Default)]
pub struct MemoryBuckets {
    full_at: Mutex<HashMap<String, u64>>,
}

impl MemoryBuckets {
    pub fn take_now(&self, key: &str, rule: Rule, now: u64) -> Decision {
        let mut states = self.full_at.lock().unwrap_or_else(|e| e.into_inner());
        if states.len() > PRUNE_ABOVE {
            states.retain(|_, full_at| *full_at > now);
        }
        let decision = gcra::decide(states.get(key).copied(), now, rule);
        if let Decision::Allow { full_at } = decision {
            states.insert(key.to_owned(), full_at);
        }
        decision
    }
}

#[async_trait]
impl Buckets for MemoryBuckets {
    async fn take(&self, key: &str, rule: Rule, now: u64) -> Result<Decision, StoreError> {
        Ok(self.take_now(key, rule, now))
    }
}
