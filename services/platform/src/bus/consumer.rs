//! The one place consumers settle deliveries: ack on success, nak with a delay on transient
//! errors, terminate on permanent ones and after the last allowed delivery.

use std::{future::Future, sync::Arc, time::Duration};

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Bus, BusError, ConsumerSpec, Envelope};

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying later (a dependency is down).
    #[error("transient: {0}")]
    Transient(String, Duration),
    /// Retrying cannot help (the message is malformed).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Runs `handler` on every delivery of a durable consumer until `shutdown`. A delivery in
/// progress when shutdown comes is finished first.
pub async fn run_consumer<H, F>(
    bus: Arc<dyn Bus>,
    spec: ConsumerSpec,
    shutdown: CancellationToken,
    handler: H,
) -> Result<(), BusError>
where
    H: Fn(Envelope) -> F + Send + Sync,
    F: Future<Output = Result<(), HandlerError>> + Send,
{
    let max_deliver = spec.max_deliver;
    let durable = spec.durable.clone();
    let mut deliveries = bus.consume(spec).await?;
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = deliveries.recv() => match next {
                Some(delivery) => delivery,
                None => return Ok(()),
            },
        };
        let span = tracing::info_span!("bus.consume", consumer = %durable, subject = %delivery.subject, attempt = delivery.attempt);
        crate::telemetry::follow_trace(&span, &delivery.headers);
        // A panicking handler must not take the consumer down with it (its messages would wait
        // forever): treat the panic as a permanent failure of that message.
        let result = std::panic::AssertUnwindSafe(handler(delivery.envelope()).instrument(span))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(HandlerError::Permanent("handler panicked".into())));
        let subject = delivery.subject.clone();
        let attempt = delivery.attempt;
        let outcome = match &result {
            Ok(()) => "ack",
            Err(HandlerError::Transient(..)) if attempt < max_deliver => "retry",
            Err(_) => "dead",
        };
        crate::shared_metrics::shared()
            .bus_consumed
            .get_or_create(&crate::shared_metrics::ConsumerLabels {
                consumer: durable.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
        let settled = match result {
            Ok(()) => delivery.ack().await,
            Err(HandlerError::Transient(reason, delay)) if attempt < max_deliver => {
                tracing::warn!(consumer = %durable, %subject, attempt, %reason, "handler failed; will retry");
                delivery.nak(delay).await
            }
            Err(err) => {
                tracing::error!(consumer = %durable, %subject, attempt, error = %err, "handler gave up on message");
                delivery.term().await
            }
        };
        if let Err(err) = settled {
            // The bus redelivers after ack_wait; handlers are idempotent.
            tracing::warn!(consumer = %durable, %subject, error = %err, "could not settle delivery");
        }
    }
}

/// How often a consumer's lag is read from the bus.
const LAG_EVERY: Duration = Duration::from_secs(10);

/// Records the consumer's lag every 10 s until `shutdown`.
pub async fn sample_lag(bus: Arc<dyn Bus>, spec: ConsumerSpec, shutdown: CancellationToken) {
    let label = crate::shared_metrics::ConsumerLabel {
        consumer: spec.durable.clone(),
    };
    loop {
        match bus.pending(&spec).await {
            Ok(pending) => {
                crate::shared_metrics::shared()
                    .bus_consumer_pending
                    .get_or_create(&label)
                    .set(i64::try_from(pending).unwrap_or(i64::MAX));
            }
            Err(err) => {
                tracing::debug!(consumer = %spec.durable, error = %err, "cannot read consumer lag")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(LAG_EVERY) => {}
        }
    }
}

/// Runs a consumer until `shutdown`, starting it again with backoff while the bus cannot take
/// it (not reachable yet, stream not declared yet); its lag is sampled meanwhile.
pub async fn consume_forever<H, F>(
    bus: Arc<dyn Bus>,
    spec: ConsumerSpec,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Envelope) -> F + Send + Sync + Clone,
    F: Future<Output = Result<(), HandlerError>> + Send,
{
    tokio::spawn(sample_lag(bus.clone(), spec.clone(), shutdown.clone()));
    let mut backoff = Duration::from_millis(200);
    loop {
        match run_consumer(bus.clone(), spec.clone(), shutdown.clone(), handler.clone()).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(consumer = %spec.durable, error = %err, "cannot consume yet; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
