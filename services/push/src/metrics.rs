//! Push delivery metrics: attempts by outcome (a fixed set of labels) and the time from a
//! push being queued to its delivery.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// delivered, retry, gone, refused, expired or invalid.
    pub outcome: &'static str,
}

#[derive(Clone)]
pub struct PushMetrics {
    pub attempts: Family<OutcomeLabels, Counter>,
    pub latency: Histogram,
}

impl Default for PushMetrics {
    fn default() -> Self {
        Self {
            attempts: Family::default(),
            latency: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
        }
    }
}

impl PushMetrics {
    pub fn register(&self, metrics: &mzchat_platform::metrics::Metrics) {
        metrics.register(
            "push_delivery_attempts",
            "Push delivery attempts, by outcome",
            self.attempts.clone(),
        );
        metrics.register(
            "push_delivery_seconds",
            "Time from a push being queued to the push service accepting it",
            self.latency.clone(),
        );
    }

    pub fn record(&self, outcome: &'static str) {
        self.attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}
