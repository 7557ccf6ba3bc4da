//! What every mzchat service shares: configuration, telemetry and metrics, the gRPC front door,
//! database connections and migrations, the bus with its two implementations, and the
//! transactional outbox.

pub mod bus;
pub mod config;
pub mod db;
pub mod error;
pub mod federation;
pub mod grpc;
pub mod metrics;
pub mod origin;
pub mod outbox;
pub mod rate_limit;
pub mod session_keys;
pub mod session_token;
pub mod shared_metrics;
pub mod shutdown;
pub mod telemetry;

use std::sync::Arc;

pub use config::{LimitsArgs, Secret, ServerArgs, ServerConfig};
pub use error::{DomainError, ErrorKind, ErrorReason};
pub use origin::Origin;

/// Connects the bus the configuration names: NATS when `--nats-url` is set, else in-process.
pub async fn connect_bus(config: &ServerConfig) -> Result<Arc<dyn bus::Bus>, bus::BusError> {
    match &config.nats_url {
        Some(url) => Ok(Arc::new(
            bus::NatsBus::connect_with(
                url,
                config.nats_credentials.as_deref(),
                &config.bus_prefix,
                config.stream_replicas,
            )
            .await?,
        )),
        None => Ok(Arc::new(bus::LocalBus::new())),
    }
}
