//! The guild service: guilds, channels, roles and permissions, members, bans, invites,
//! messages, pins, reactions and typing. The event stream is not built yet.
//!
//! `build` prepares the schema and clients; `Guild::mount` adds the gRPC services;
//! `Guild::spawn` starts the outbox relay.

pub mod app;
pub mod config;
mod convert;
pub mod domain;
pub mod events;
mod grpc;
pub mod metrics;
mod store;
mod tasks;

use std::{sync::Arc, time::Duration};

use mzchat_guild_migration::Migrator;
use mzchat_platform::{
    bus::Bus,
    db::{self, DatabaseTarget, DbSetupError},
    grpc::{GrpcServer, InternalAuth, MAX_REQUEST_BYTES},
    outbox::{Outbox, OutboxRelay},
    rate_limit::RateLimiter,
    session_keys::SessionKeys,
};
use mzchat_proto::guild::{
    event_service_server::EventServiceServer,
    guild_internal_service_server::GuildInternalServiceServer,
    guild_service_server::GuildServiceServer, message_service_server::MessageServiceServer,
};
use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{GuildArgs, GuildConfig};

use crate::app::GuildApp;

pub const SERVICE: &str = "guild";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("{0}")]
    Config(String),
}

/// What the guild service needs from the process around it.
pub struct Deps {
    pub bus: Arc<dyn Bus>,
    pub internal: InternalAuth,
    pub rate: Arc<RateLimiter>,
}

pub struct Guild {
    app: Arc<GuildApp>,
    keys: Arc<SessionKeys>,
    db: DatabaseConnection,
    outbox: Outbox,
    bus: Arc<dyn Bus>,
    internal: InternalAuth,
}

/// Applies the guild service's migrations to its schema.
pub async fn migrate(config: &mzchat_platform::ServerConfig) -> Result<(), DbSetupError> {
    let db = db::connect(&DatabaseTarget::for_service(config, SERVICE), 1).await?;
    db::migrate::<Migrator>(&db).await
}

pub async fn build(config: GuildConfig, deps: Deps) -> Result<Guild, SetupError> {
    let target = DatabaseTarget::for_service(&config.server, SERVICE);
    let db = db::connect(&target, config.server.database_max_connections).await?;
    if config.server.migrate {
        db::migrate::<Migrator>(&db).await?;
    }
    let keys = SessionKeys::new(&config.identity_url, config.server.origin.as_str())
        .map_err(|e| SetupError::Config(e.to_string()))?;
    let identity = tonic::transport::Endpoint::from_shared(config.identity_url.clone())
        .map_err(|e| SetupError::Config(format!("identity url: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect_lazy();
    let outbox = Outbox::new();
    let app = Arc::new(GuildApp::new(
        db.clone(),
        Arc::new(config),
        outbox.clone(),
        deps.bus.clone(),
        identity,
        deps.internal.clone(),
        deps.rate,
    ));
    Ok(Guild {
        app,
        keys: Arc::new(keys),
        db,
        outbox,
        bus: deps.bus,
        internal: deps.internal,
    })
}

impl Guild {
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Adds stream and presence metrics to the process's registry.
    pub fn register_metrics(&self, metrics: &mzchat_platform::metrics::Metrics) {
        self.app.metrics.register(metrics);
    }

    pub fn mount(&self, server: &mut GrpcServer) {
        let (app, keys) = (self.app.clone(), self.keys.clone());
        server
            .add_service(
                GuildServiceServer::new(grpc::GuildGrpc::new(app.clone(), keys.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                MessageServiceServer::new(grpc::MessageGrpc::new(app.clone(), keys.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                EventServiceServer::new(grpc::EventGrpc::new(app.clone(), keys, self.bus.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(GuildInternalServiceServer::with_interceptor(
                grpc::GuildInternalGrpc::new(app),
                self.internal.clone(),
            ));
    }

    /// Starts the background work: outbox relay, event log pruning, the presence sweep, the
    /// profiles from identity and the permission cache's invalidation; it all stops at
    /// `shutdown`.
    pub fn spawn(&self, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        let relay = OutboxRelay::new(self.db.clone(), self.bus.clone(), &self.outbox, SERVICE);
        vec![
            tokio::spawn(
                self.app
                    .metrics
                    .clone()
                    .count_online(self.db.clone(), shutdown.clone()),
            ),
            tokio::spawn(relay.run(shutdown.clone())),
            tokio::spawn(tasks::prune_events(self.db.clone(), shutdown.clone())),
            tokio::spawn(tasks::sweep_presence(self.app.clone(), shutdown.clone())),
            tokio::spawn(tasks::follow_profiles(
                self.app.clone(),
                self.bus.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(tasks::follow_permission_changes(
                self.app.clone(),
                self.bus.clone(),
                shutdown,
            )),
        ]
    }
}
