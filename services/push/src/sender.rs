//! Sends queued pushes, to HTTP endpoints (encrypted when the device gave RFC 8291 keys) or
//! through FCM: retried on 429 and 5xx with backoff until the push's TTL ends, and the endpoint
//! or token forgotten when its service says it is gone.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::{
    deliver::{Answer, Deliverer, DeliveryError, Push},
    endpoint::EndpointError,
    fcm::Fcm,
    metrics::PushMetrics,
    store::{
        deliveries::{self, DELIVERED, DROPPED, Delivery, PENDING},
        registrations,
    },
    webpush,
};

const POLL: Duration = Duration::from_millis(500);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Finished pushes are kept a day (longer than a relayed push may be retried, so the log still
/// recognises a duplicate).
const KEEP_FINISHED_MS: i64 = 86_400_000;
const BATCH: usize = 32;
/// Pushes in flight at once.
const IN_FLIGHT: usize = 64;

pub struct Sender {
    db: DatabaseConnection,
    deliverer: Deliverer,
    /// FCM, when the server has credentials for it.
    fcm: Option<Fcm>,
    pub wake: Arc<Notify>,
    pub metrics: PushMetrics,
}

/// 1 s doubling to 2 min, for retries within a push's TTL.
fn backoff_ms(attempts: i32) -> i64 {
    1_000_i64
        .saturating_mul(1 << attempts.clamp(0, 7))
        .min(120_000)
}

impl Sender {
    pub fn new(db: DatabaseConnection, deliverer: Deliverer, fcm: Option<Fcm>) -> Self {
        Self {
            db,
            deliverer,
            fcm,
            wake: Arc::new(Notify::new()),
            metrics: PushMetrics::default(),
        }
    }

    /// Claims due pushes as call slots free up and sends each on its own task, so one slow
    /// endpoint holds one slot, not a batch.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut pruned = std::time::Instant::now();
        loop {
            let now = mzchat_platform::db::now_millis();
            if pruned.elapsed() > PRUNE_EVERY {
                pruned = std::time::Instant::now();
                if let Err(err) = deliveries::prune(&self.db, now - KEEP_FINISHED_MS).await {
                    tracing::warn!(error = %err, "cannot prune the push log");
                }
            }
            let room = slots.available_permits().min(BATCH);
            let token = uuid::Uuid::new_v4().simple().to_string();
            let due = if room == 0 {
                Vec::new()
            } else {
                match deliveries::claim_due(&self.db, now, room as u64, &token).await {
                    Ok(due) => due,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read queued pushes");
                        Vec::new()
                    }
                }
            };
            let full = room > 0 && due.len() == room && !shutdown.is_cancelled();
            for delivery in due {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (sender, token) = (self.clone(), token.clone());
                tokio::spawn(async move {
                    sender.send(delivery, &token).await;
                    drop(slot);
                });
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                // A slot freeing up lets the next due push go.
                _ = slots.clone().acquire_owned(), if room == 0 => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn send(&self, delivery: Delivery, token: &str) {
        let now = mzchat_platform::db::now_millis();
        let attempts = delivery.attempts + 1;
        let (state, next, result) = if delivery.expires_at <= now {
            self.metrics.record("expired");
            (DROPPED, now, "expired before delivery".to_owned())
        } else {
            let answer = self.attempt(&delivery, now).await;
            self.metrics.record(match &answer {
                Ok(Answer::Delivered(_)) => "delivered",
                Ok(Answer::Gone(_)) => "gone",
                Ok(Answer::Refused(_)) => "refused",
                Ok(Answer::Later { .. }) => "retry",
                Err(DeliveryError::Endpoint(_) | DeliveryError::NoFcm) => "invalid",
                Err(_) => "retry",
            });
            match answer {
                Ok(Answer::Delivered(code)) => {
                    let queued_for =
                        (mzchat_platform::db::now_millis() - delivery.created_at).max(0);
                    self.metrics.latency.observe(queued_for as f64 / 1000.0);
                    (DELIVERED, now, format!("delivered ({code})"))
                }
                Ok(Answer::Gone(code)) => {
                    if let Err(err) = registrations::forget_route(
                        &self.db,
                        &delivery.user_id,
                        &delivery.device_id,
                        &delivery.transport,
                        &delivery.endpoint_url,
                    )
                    .await
                    {
                        tracing::warn!(error = %err, "cannot forget a gone push endpoint");
                    }
                    (DROPPED, now, format!("endpoint gone ({code}); forgotten"))
                }
                Ok(Answer::Refused(code)) => (DROPPED, now, format!("refused ({code})")),
                Ok(Answer::Later {
                    status,
                    retry_after,
                }) => {
                    // A Retry-After past the TTL simply ends the push.
                    let wait = retry_after
                        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                        .max(backoff_ms(delivery.attempts));
                    retry(
                        now.saturating_add(wait),
                        delivery.expires_at,
                        format!("busy ({status})"),
                    )
                }
                // The name may resolve again shortly (a resolver outage).
                Err(DeliveryError::Endpoint(EndpointError::Unresolvable(host))) => retry(
                    now + backoff_ms(delivery.attempts),
                    delivery.expires_at,
                    format!("{host} does not resolve"),
                ),
                Err(DeliveryError::Endpoint(err)) => (DROPPED, now, err.to_string()),
                Err(DeliveryError::Encryption(err)) => (DROPPED, now, err.to_string()),
                Err(DeliveryError::NoFcm) => (DROPPED, now, DeliveryError::NoFcm.to_string()),
                Err(err) => retry(
                    now + backoff_ms(delivery.attempts),
                    delivery.expires_at,
                    err.to_string(),
                ),
            }
        };
        if state != PENDING {
            tracing::info!(user_id = %delivery.user_id, device_id = %delivery.device_id, state, %result, "push settled");
        }
        let outcome = deliveries::Outcome {
            state,
            attempts,
            next_attempt_at: next,
            result: &result,
        };
        match deliveries::settle(&self.db, &delivery.id, token, &outcome, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(id = %delivery.id, "push lease ran out; another sender has it")
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot record a push's outcome; it will be sent again");
            }
        }
    }

    async fn attempt(&self, delivery: &Delivery, now: i64) -> Result<Answer, DeliveryError> {
        let ttl = ((delivery.expires_at - now) / 1000).clamp(0, u32::MAX.into()) as u32;
        if delivery.transport == registrations::FCM {
            let fcm = self.fcm.as_ref().ok_or(DeliveryError::NoFcm)?;
            return fcm
                .send(&delivery.endpoint_url, &delivery.payload, ttl)
                .await;
        }
        let encrypted = delivery.p256dh.is_some();
        let body = match (&delivery.p256dh, &delivery.auth) {
            (Some(p256dh), Some(auth)) => webpush::encrypt(p256dh, auth, &delivery.payload)
                .map_err(DeliveryError::Encryption)?,
            _ => delivery.payload.clone(),
        };
        let push = Push {
            body: Bytes::from(body),
            encrypted,
            ttl,
            urgency: "high",
        };
        self.deliverer.send(&delivery.endpoint_url, &push).await
    }
}

/// Pending again at `next`, unless that is past the push's TTL.
fn retry(next: i64, expires_at: i64, reason: String) -> (&'static str, i64, String) {
    if next >= expires_at {
        (
            DROPPED,
            next,
            format!("expired after retries; last: {reason}"),
        )
    } else {
        (PENDING, next, reason)
    }
}
