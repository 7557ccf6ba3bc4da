//! The operator's Prometheus metrics: reconciles by outcome and error kind, their duration, and
//! whether this replica leads.

use std::sync::Mutex;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `success` or `error`.
    pub outcome: &'static str,
    /// The error's kind (`api`, `client`); empty on success.
    pub error: &'static str,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    reconciles: Family<ReconcileLabels, Counter>,
    duration: Family<ReconcileLabels, Histogram>,
    leader: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mzchat_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        // 5 ms to about 80 s: a reconcile is a few dozen API calls
        let duration = Family::<ReconcileLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 15))
        });
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "reconciles",
            "Reconciles of Homeservers, by outcome and error kind",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time a reconcile of a Homeserver took, by outcome and error kind",
            duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease and reconciles",
            leader.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            reconciles,
            duration,
            leader,
        }
    }

    /// Records one reconcile; `error` is the error's kind, None on success.
    pub fn reconciled(&self, error: Option<&'static str>, took: Duration) {
        let labels = ReconcileLabels {
            outcome: if error.is_some() { "error" } else { "success" },
            error: error.unwrap_or_default(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = encode(&mut text, &registry) {
            tracing::error!(error = %error, "cannot encode metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_are_counted_by_outcome_and_error_kind() {
        let metrics = Metrics::new();
        metrics.reconciled(None, Duration::from_millis(20));
        metrics.reconciled(Some("api"), Duration::from_millis(20));
        metrics.reconciled(Some("api"), Duration::from_millis(20));
        let text = metrics.encode();
        assert!(
            text.contains(r#"mzchat_operator_reconciles_total{outcome="success",error=""} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mzchat_operator_reconciles_total{outcome="error",error="api"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"mzchat_operator_reconcile_duration_seconds_count{outcome="error",error="api"} 2"#
            ),
            "{text}"
        );
    }

    #[test]
    fn the_leader_gauge_follows_leadership() {
        let metrics = Metrics::new();
        metrics.set_leader(true);
        assert!(metrics.encode().contains("mzchat_operator_leader 1"));
        metrics.set_leader(false);
        assert!(metrics.encode().contains("mzchat_operator_leader 0"));
    }
}
