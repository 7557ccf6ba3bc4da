//! federation-sync's metrics: job runs by kind and outcome, and destinations by health
//! (counted, never labelled by origin, so the label set stays bounded).

use std::time::Duration;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::store::destinations::{self, Health};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: String,
    /// `done`, `retry` or `dead`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HealthLabel {
    /// `healthy`, `backing_off` or `down`.
    pub health: String,
}

#[derive(Clone, Default)]
pub struct FederationMetrics {
    pub jobs: Family<JobLabels, Counter>,
    pub destinations: Family<HealthLabel, Gauge>,
}

const COUNT_EVERY: Duration = Duration::from_secs(15);
const PAGE: u64 = 1000;

impl FederationMetrics {
    pub fn register(&self, metrics: &mzchat_platform::metrics::Metrics) {
        metrics.register(
            "federation_jobs",
            "Federation job runs, by kind and outcome (done, retry, dead)",
            self.jobs.clone(),
        );
        metrics.register(
            "federation_destinations",
            "Other servers this one calls, by health (healthy, backing_off, down)",
            self.destinations.clone(),
        );
    }

    pub fn job(&self, kind: &str, outcome: &str) {
        self.jobs
            .get_or_create(&JobLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts destinations by health every 15 s until `shutdown`.
    pub async fn count_destinations(self, db: DatabaseConnection, shutdown: CancellationToken) {
        loop {
            match count(&db).await {
                Ok([healthy, backing_off, down]) => {
                    for (health, n) in [
                        ("healthy", healthy),
                        ("backing_off", backing_off),
                        ("down", down),
                    ] {
                        self.destinations
                            .get_or_create(&HealthLabel {
                                health: health.into(),
                            })
                            .set(n);
                    }
                }
                Err(err) => tracing::debug!(error = %err, "cannot count destinations"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(COUNT_EVERY) => {}
            }
        }
    }
}

async fn count(db: &DatabaseConnection) -> Result<[i64; 3], sea_orm::DbErr> {
    let mut counts = [0i64; 3];
    let mut after: Option<String> = None;
    loop {
        let page = destinations::page(db, after.as_deref(), PAGE).await?;
        for row in &page {
            counts[match destinations::health(row) {
                Health::Healthy => 0,
                Health::BackingOff => 1,
                Health::Down => 2,
            }] += 1;
        }
        if (page.len() as u64) < PAGE {
            return Ok(counts);
        }
        after = page.last().map(|r| r.origin.clone());
    }
}
