//! The guild service's metrics: event streams open on this process, and users announced online
//! on the server (counted from the database, so every replica reports the same).

use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct GuildMetrics {
    pub open_streams: Gauge,
    pub online_users: Gauge,
}

const COUNT_EVERY: Duration = Duration::from_secs(15);

impl GuildMetrics {
    pub fn register(&self, metrics: &mzchat_platform::metrics::Metrics) {
        metrics.register(
            "event_streams_open",
            "Event streams open on this process",
            self.open_streams.clone(),
        );
        metrics.register(
            "presence_online_users",
            "Users announced online on this server",
            self.online_users.clone(),
        );
    }

    /// Counts online users every 15 s until `shutdown`.
    pub async fn count_online(self, db: DatabaseConnection, shutdown: CancellationToken) {
        loop {
            match crate::store::presence::online_count(&db).await {
                Ok(n) => {
                    self.online_users.set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                Err(err) => tracing::debug!(error = %err, "cannot count online users"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(COUNT_EVERY) => {}
            }
        }
    }
}
