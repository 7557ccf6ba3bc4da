//! Rate limits that hold across replicas. Each limit is a token bucket (kept as GCRA state)
//! per caller: per user and device, per calling server, or per client address. With NATS the
//! buckets live in a key-value bucket every replica shares; in the one-process mode, in memory.
//!
//! A limiter never makes a call fail because its store is down: while NATS cannot be reached
//! it decides from this process's own buckets (each replica then allows the full rate), counts
//! the failure, and tries the shared store again a little later.

mod client_ip;
mod gcra;
mod memory;
mod nats_kv;
mod rules;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub use client_ip::client_address;
pub use gcra::Decision;
pub use memory::MemoryBuckets;
pub use nats_kv::KvBuckets;
pub use rules::{Limit, RateLimits, Rule};

use crate::{ServerConfig, error::ERROR_DOMAIN, shared_metrics};

/// The `google.rpc.ErrorInfo` reason of a refusal.
pub const RATE_LIMITED: &str = "RATE_LIMITED";
/// After a failure of the shared store, how long decisions stay local before it is tried again.
const SHARED_RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[error("rate limit store: {0}")]
pub struct StoreError(pub String);

/// Where bucket states live.
#[async_trait]
pub trait Buckets: Send + Sync + 'static {
    /// Decides one call of `key` at `now` (µs since the epoch) and, if allowed, records it.
    async fn take(&self, key: &str, rule: Rule, now: u64) -> Result<Decision, StoreError>;
}

pub struct RateLimiter {
    limits: RateLimits,
    shared: Option<Arc<dyn Buckets>>,
    local: MemoryBuckets,
    /// µs since the epoch until which the shared store is not asked (after a failure).
    shared_skipped_until: AtomicU64,
    forwarded_for_hops: usize,
}

impl RateLimiter {
    /// Buckets in this process only: right for a single process.
    pub fn local(limits: RateLimits) -> Self {
        Self {
            limits,
            shared: None,
            local: MemoryBuckets::default(),
            shared_skipped_until: AtomicU64::new(0),
            forwarded_for_hops: 0,
        }
    }

    /// Buckets in `shared`, with this process's own as the fallback.
    pub fn shared(limits: RateLimits, shared: Arc<dyn Buckets>) -> Self {
        Self {
            shared: Some(shared),
            ..Self::local(limits)
        }
    }

    /// The limiter the configuration asks for: shared through NATS when `--nats-url` is set.
    pub async fn connect(config: &ServerConfig) -> Result<Self, crate::bus::BusError> {
        let limits = config.rate_limits.clone();
        let limiter = match &config.nats_url {
            Some(urls) => {
                let client =
                    crate::bus::nats::connect_client(urls, config.nats_credentials.as_deref())
                        .await?;
                let bucket = format!("{}-rate-limits", config.bus_prefix);
                let period = limits.longest_period();
                let buckets = KvBuckets::new(client, &bucket, period, config.stream_replicas);
                Self::shared(limits, Arc::new(buckets))
            }
            None => Self::local(limits),
        };
        Ok(limiter.with_forwarded_for_hops(config.forwarded_for_hops))
    }

    /// Client addresses come from `X-Forwarded-For`, `hops` proxies back (0: the peer address).
    pub fn with_forwarded_for_hops(mut self, hops: usize) -> Self {
        self.forwarded_for_hops = hops;
        self
    }

    /// Counts one call of `who` (a user and device, an origin) against `limit`; refused with
    /// `RESOURCE_EXHAUSTED` and a `RetryInfo` when the bucket is empty.
    pub async fn check(&self, limit: Limit, who: &str) -> Result<(), Status> {
        let Some(rule) = self.limits.rule(limit) else {
            return Ok(());
        };
        let key = bucket_key(limit, who);
        let decision = self.decide(&key, rule).await;
        let metrics = &shared_metrics::shared().rate_limit_calls;
        match decision {
            Decision::Allow { .. } => {
                metrics.get_or_create(&outcome(limit, "allowed")).inc();
                Ok(())
            }
            Decision::Refuse { retry_after } => {
                metrics.get_or_create(&outcome(limit, "refused")).inc();
                Err(refusal(limit, rule, retry_after))
            }
        }
    }

    /// `check` keyed by the address the call comes from (calls without a session).
    pub async fn check_address<T>(&self, limit: Limit, request: &Request<T>) -> Result<(), Status> {
        let address = client_address(request, self.forwarded_for_hops);
        self.check(limit, &address).await
    }

    async fn decide(&self, key: &str, rule: Rule) -> Decision {
        let now = now_micros();
        if let Some(shared) = &self.shared
            && self.shared_skipped_until.load(Ordering::Relaxed) <= now
        {
            match shared.take(key, rule, now).await {
                Ok(decision) => return decision,
                Err(err) => {
                    tracing::warn!(error = %err, "rate limits decided locally for a while");
                    shared_metrics::shared().rate_limit_store_failures.inc();
                    let retry_at = now + SHARED_RETRY.as_micros() as u64;
                    self.shared_skipped_until.store(retry_at, Ordering::Relaxed);
                }
            }
        }
        self.local.take_now(key, rule, now)
    }
}

/// Callers' identities are hashed: keys stay short, valid in any store, and free of user ids.
fn bucket_key(limit: Limit, who: &str) -> String {
    let digest = Sha256::digest(who.as_bytes());
    format!("{}.{}", limit.name(), hex::encode(&digest[..16]))
}

fn outcome(limit: Limit, outcome: &'static str) -> shared_metrics::RateLimitLabels {
    shared_metrics::RateLimitLabels {
        limit: limit.name(),
        outcome,
    }
}

fn refusal(limit: Limit, rule: Rule, retry_after: Duration) -> Status {
    // Whole milliseconds, rounded up: retrying at the advertised time must succeed.
    let retry_after = Duration::from_millis(retry_after.as_micros().div_ceil(1000) as u64);
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(retry_after)).set_error_info(
        RATE_LIMITED,
        ERROR_DOMAIN,
        std::collections::HashMap::from([("limit".to_owned(), limit.name().to_owned())]),
    );
    Status::with_error_details(
        Code::ResourceExhausted,
        format!(
            "rate limit {limit} ({rule}) reached; retry in {:.1} s",
            retry_after.as_secs_f64()
        ),
        details,
    )
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;

    #[async_trait]
    impl Buckets for Broken {
        async fn take(&self, _: &str, _: Rule, _: u64) -> Result<Decision, StoreError> {
            Err(StoreError("down".into()))
        }
    }

    fn one_per_minute() -> RateLimits {
        RateLimits::from_settings(&["all=off", "login=1/1m"]).expect("valid")
    }

    #[tokio::test]
    async fn refusals_carry_retry_info_and_the_limit() {
        let limiter = RateLimiter::local(one_per_minute());
        limiter.check(Limit::Login, "alice").await.expect("first");
        limiter
            .check(Limit::Login, "bob")
            .await
            .expect("another caller");
        let status = limiter
            .check(Limit::Login, "alice")
            .await
            .expect_err("second");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("rate limit login (1 per 1 min)"),
            "{}",
            status.message()
        );
        let retry = status.get_details_retry_info().and_then(|r| r.retry_delay);
        assert!(retry.is_some_and(|d| d > Duration::from_secs(58) && d <= Duration::from_secs(60)));
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, RATE_LIMITED);
        assert_eq!(
            info.metadata.get("limit").map(String::as_str),
            Some("login")
        );
        // Limits that are off never refuse.
        for _ in 0..100 {
            limiter
                .check(Limit::MessageSend, "alice")
                .await
                .expect("off");
        }
    }

    #[tokio::test]
    async fn a_failing_shared_store_falls_back_to_local_buckets() {
        let limiter = RateLimiter::shared(one_per_minute(), Arc::new(Broken));
        let before = shared_metrics::shared().rate_limit_store_failures.get();
        limiter
            .check(Limit::Login, "carol")
            .await
            .expect("allowed locally");
        assert!(limiter.check(Limit::Login, "carol").await.is_err());
        assert!(shared_metrics::shared().rate_limit_store_failures.get() > before);
    }
}
