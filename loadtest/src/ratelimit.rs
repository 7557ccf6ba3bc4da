//! The rate limiter's cost per call: in memory (one process), and shared through NATS
//! key-value by one replica (one round trip: the compare-and-set) and by two replicas taking
//! turns (each call finds the other's revision: a read and a retry).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use mzchat_platform::rate_limit::{KvBuckets, Limit, RateLimiter, RateLimits};

use crate::results;

/// No call is refused: the benchmark measures the bookkeeping, not the refusals.
fn generous() -> RateLimits {
    RateLimits::from_settings(&["all=off", "message.send=100000000/1s"]).expect("limits")
}

async fn shared(nats_url: &str, bucket: &str) -> anyhow::Result<RateLimiter> {
    let client = async_nats::connect(nats_url).await?;
    let buckets = KvBuckets::new(client, bucket, Duration::from_secs(60), 1);
    Ok(RateLimiter::shared(generous(), Arc::new(buckets)))
}

/// Mean µs per call over `calls` sequential calls spread over `keys` callers, alternating
/// between `limiters`.
async fn per_call(limiters: &[Arc<RateLimiter>], calls: usize, keys: usize) -> f64 {
    // Warm up: the bucket exists, revisions are known.
    for key in 0..keys {
        let _ = limiters[0]
            .check(Limit::MessageSend, &key.to_string())
            .await;
    }
    let start = Instant::now();
    for i in 0..calls {
        let limiter = &limiters[i % limiters.len()];
        let _ = limiter
            .check(Limit::MessageSend, &(i % keys).to_string())
            .await;
    }
    start.elapsed().as_secs_f64() * 1e6 / calls as f64
}

/// Calls per second with `tasks` callers at once, each its own key, on one limiter.
async fn concurrent(limiter: Arc<RateLimiter>, tasks: usize, calls: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                for _ in 0..calls / tasks {
                    let _ = limiter
                        .check(Limit::MessageSend, &format!("task-{task}"))
                        .await;
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.await;
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

pub async fn ratelimit_scenario(nats_url: &str, calls: usize) -> anyhow::Result<()> {
    let bucket = format!("bench-rl-{}", std::process::id());
    let local = Arc::new(RateLimiter::local(generous()));
    let one = Arc::new(shared(nats_url, &bucket).await?);
    let other = Arc::new(shared(nats_url, &bucket).await?);
    let memory_us = per_call(std::slice::from_ref(&local), calls * 10, 1000).await;
    let kv_us = per_call(std::slice::from_ref(&one), calls, 100).await;
    // An odd number of callers: each one's calls alternate between the replicas, so every call
    // finds the other replica's revision.
    let kv_two_us = per_call(&[one.clone(), other], calls, 101).await;
    let kv_rate = concurrent(one, 16, calls).await;
    println!(
        "rate limiter, µs per call: memory {memory_us:.2}, NATS KV one replica {kv_us:.0}, two replicas in turn {kv_two_us:.0}"
    );
    println!("rate limiter, NATS KV, 16 callers at once: {kv_rate:.0} calls/s");
    results::throughput("calls/s (NATS KV, 16 callers)", kv_rate);
    results::field(
        "per_call_us",
        serde_json::json!({
            "memory": memory_us,
            "nats_kv_one_replica": kv_us,
            "nats_kv_two_replicas": kv_two_us,
        }),
    );
    let client = async_nats::connect(nats_url).await?;
    let _ = async_nats::jetstream::new(client)
        .delete_key_value(&bucket)
        .await;
    Ok(())
}
