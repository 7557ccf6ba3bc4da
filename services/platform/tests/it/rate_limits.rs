//! Rate limit buckets in NATS key-value, shared by replicas (each its own client and limiter).

use std::{sync::Arc, time::Duration};

use mzchat_platform::rate_limit::{KvBuckets, Limit, RateLimiter, RateLimits};

fn nats_url() -> String {
    std::env::var("MZCHAT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn bucket_name() -> String {
    format!("rl-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn replica(url: &str, bucket: &str, limits: &RateLimits) -> RateLimiter {
    let client = async_nats::connect(url)
        .await
        .expect("NATS (make services-up)");
    let buckets = KvBuckets::new(client, bucket, Duration::from_secs(60), 1);
    RateLimiter::shared(limits.clone(), Arc::new(buckets))
}

async fn delete_bucket(bucket: &str) {
    let client = async_nats::connect(nats_url()).await.expect("NATS");
    let _ = async_nats::jetstream::new(client)
        .delete_key_value(bucket)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_spend_one_bucket_between_them() {
    let limits = RateLimits::from_settings(&["all=off", "login=10/1m"]).expect("limits");
    let bucket = bucket_name();
    let replicas = [
        Arc::new(replica(&nats_url(), &bucket, &limits).await),
        Arc::new(replica(&nats_url(), &bucket, &limits).await),
    ];
    // In turn: each replica sees the other's spending.
    let mut allowed = 0;
    for i in 0..30 {
        if replicas[i % 2].check(Limit::Login, "alice").await.is_ok() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);
    // All at once: compare-and-set lets no token be spent twice.
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let limiter = replicas[i % 2].clone();
            tokio::spawn(async move { limiter.check(Limit::Login, "bob").await.is_ok() })
        })
        .collect();
    let mut allowed = 0;
    for call in calls {
        if call.await.expect("task") {
            allowed += 1;
        }
    }
    assert!(allowed <= 10, "{allowed} allowed");
    assert!(allowed >= 1, "contention refused everyone");
    delete_bucket(&bucket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_on_while_nats_is_unreachable() {
    let limits = RateLimits::from_settings(&["all=off", "login=2/1m"]).expect("limits");
    // Port 1 on loopback refuses connections; the client keeps retrying in the background.
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect("nats://127.0.0.1:1")
        .await
        .expect("client");
    let buckets = KvBuckets::new(client, &bucket_name(), Duration::from_secs(60), 1);
    let limiter = RateLimiter::shared(limits, Arc::new(buckets));
    // Decided in this process meanwhile: still limited, never failed.
    let results: Vec<bool> = futures::future::join_all(
        (0..4).map(|_| async { limiter.check(Limit::Login, "carol").await.is_ok() }),
    )
    .await;
    assert_eq!(results.iter().filter(|ok| **ok).count(), 2, "{results:?}");
}
