//! Metrics the shared machinery records: outbox relays and bus consumers. One set per process,
//! registered into the process's registry by `Metrics::new`. Labels are bounded: a service
//! name, a consumer (durable) name, an outcome.

use std::sync::{OnceLock, atomic::AtomicU64};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
    /// `ack`, `retry` or `dead`.
    pub outcome: String,
}

#[derive(Default)]
pub struct SharedMetrics {
    pub outbox_published: Family<ServiceLabel, Counter>,
    pub outbox_publish_failures: Family<ServiceLabel, Counter>,
    pub outbox_depth: Family<ServiceLabel, Gauge>,
    pub outbox_oldest_age_seconds: Family<ServiceLabel, Gauge<f64, AtomicU64>>,
    pub bus_consumed: Family<ConsumerLabels, Counter>,
    pub bus_published: Family<StreamLabel, Counter>,
    pub bus_consumer_pending: Family<ConsumerLabel, Gauge>,
    pub rate_limit_calls: Family<RateLimitLabels, Counter>,
    pub rate_limit_store_failures: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RateLimitLabels {
    pub limit: &'static str,
    /// `allowed` or `refused`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabel {
    /// A declared stream's name; `ephemeral` for messages never stored, `none` for a subject no
    /// stream takes (a bug: JetStream refuses it).
    pub stream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabel {
    pub consumer: String,
}

pub fn shared() -> &'static SharedMetrics {
    static SHARED: OnceLock<SharedMetrics> = OnceLock::new();
    SHARED.get_or_init(SharedMetrics::default)
}

pub(crate) fn register(registry: &mut Registry) {
    let m = shared();
    registry.register(
        "outbox_published",
        "Events the outbox relay published to the bus, by service",
        m.outbox_published.clone(),
    );
    registry.register(
        "outbox_publish_failures",
        "Outbox relay passes that found the bus unavailable, by service",
        m.outbox_publish_failures.clone(),
    );
    registry.register(
        "outbox_depth",
        "Events waiting in the outbox, by service",
        m.outbox_depth.clone(),
    );
    registry.register(
        "outbox_oldest_age_seconds",
        "Age of the oldest event waiting in the outbox (0 when empty), by service",
        m.outbox_oldest_age_seconds.clone(),
    );
    registry.register(
        "bus_published",
        "Messages published to the bus, by stream (ephemeral: typing and presence pulses)",
        m.bus_published.clone(),
    );
    registry.register(
        "bus_consumer_pending",
        "Messages a durable consumer has yet to settle (its lag), by consumer",
        m.bus_consumer_pending.clone(),
    );
    registry.register(
        "bus_consumed",
        "Bus deliveries handled, by consumer and outcome (ack, retry, dead)",
        m.bus_consumed.clone(),
    );
    registry.register(
        "rate_limit_calls",
        "Calls counted against a rate limit, by limit and outcome (allowed, refused)",
        m.rate_limit_calls.clone(),
    );
    registry.register(
        "rate_limit_store_failures",
        "Times the shared rate limit store failed and limits were decided in-process for a while",
        m.rate_limit_store_failures.clone(),
    );
}

pub fn service(name: &str) -> ServiceLabel {
    ServiceLabel {
        service: name.to_owned(),
    }
}

/// Counts a message published durably on `subject`, under its stream.
pub fn count_published(subject: &str) {
    count_in_stream(crate::bus::streams::of_subject(subject).unwrap_or("none"));
}

/// Counts a message published without being stored (typing and presence pulses).
pub fn count_published_ephemeral() {
    count_in_stream("ephemeral");
}

fn count_in_stream(stream: &'static str) {
    shared()
        .bus_published
        .get_or_create(&StreamLabel { stream })
        .inc();
}
