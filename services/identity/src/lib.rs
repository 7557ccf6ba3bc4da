//! The identity service: local and shadow accounts, device certificates and revocations,
//! sessions (login, JWTs, rotating refresh tokens), profiles and per-user settings, pairing
//! mailboxes, and the server's keys (GetServerInfo).
//!
//! `build` prepares everything that must work before serving (schema, migrations, keys);
//! `Identity::mount` adds its gRPC services to a process's server and `Identity::spawn` starts
//! its background work (outbox relay, key rotation, cleanup).

pub mod app;
pub mod config;
pub mod domain;
pub mod events;
mod federation_tasks;
mod grpc;
pub mod keys;
mod memberships;
mod store;

use std::{sync::Arc, time::Duration};

use mzchat_identity_migration::Migrator;
use mzchat_platform::{
    bus::Bus,
    db::{self, DatabaseTarget, DbSetupError},
    federation::{RemoteKeys, S2sAuthenticated},
    grpc::{GrpcServer, InternalAuth, MAX_REQUEST_BYTES},
    outbox::{Outbox, OutboxRelay},
    rate_limit::RateLimiter,
};
use mzchat_proto::{
    federation::identity_federation_service_server::IdentityFederationServiceServer,
    identity::{
        identity_service_server::IdentityServiceServer,
        server_info_service_server::ServerInfoServiceServer,
        server_key_internal_service_server::ServerKeyInternalServiceServer,
        session_internal_service_server::SessionInternalServiceServer,
        session_service_server::SessionServiceServer,
    },
};
use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{IdentityArgs, IdentityConfig, RegistrationPolicy};

use crate::{app::IdentityApp, keys::KeyRing, memberships::Memberships};

pub const SERVICE: &str = "identity";
const KEY_REFRESH: Duration = Duration::from_secs(60);
const CLEANUP: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("cannot load server keys")]
    Keys(#[source] sea_orm::DbErr),
    #[error("{0}")]
    Config(String),
}

/// What identity needs from the process around it.
pub struct Deps {
    pub bus: Arc<dyn Bus>,
    pub internal: InternalAuth,
    /// Where the guild service's internal API answers (memberships for token claims).
    pub guild_internal_url: String,
    /// Where federation-sync's internal API answers (other servers' keys).
    pub federation_internal_url: String,
    /// Where the media service's internal API answers (avatar files); none: no avatar files.
    pub media_internal_url: Option<String>,
    pub rate: Arc<RateLimiter>,
}

pub struct Identity {
    app: Arc<IdentityApp>,
    remote_keys: Arc<RemoteKeys>,
    db: DatabaseConnection,
    outbox: Outbox,
    bus: Arc<dyn Bus>,
    internal: InternalAuth,
    rate: Arc<RateLimiter>,
}

/// Applies identity's migrations to its schema.
pub async fn migrate(config: &mzchat_platform::ServerConfig) -> Result<(), DbSetupError> {
    let db = db::connect(&DatabaseTarget::for_service(config, SERVICE), 1).await?;
    db::migrate::<Migrator>(&db).await
}

pub async fn build(config: IdentityConfig, deps: Deps) -> Result<Identity, SetupError> {
    let target = DatabaseTarget::for_service(&config.server, SERVICE);
    let db = db::connect(&target, config.server.database_max_connections).await?;
    if config.server.migrate {
        db::migrate::<Migrator>(&db).await?;
    }
    let keys = Arc::new(KeyRing::new(config.key_rotation, config.access_token_ttl));
    keys.refresh(&db, db::now_millis())
        .await
        .map_err(SetupError::Keys)?;
    let memberships = Memberships::new(&deps.guild_internal_url, deps.internal.clone())
        .map_err(|e| SetupError::Config(e.to_string()))?;
    let remote_keys = Arc::new(
        RemoteKeys::new(&deps.federation_internal_url, deps.internal.clone())
            .map_err(SetupError::Config)?,
    );
    let avatars = app::Avatars::new(deps.media_internal_url.as_deref(), deps.internal.clone())
        .map_err(SetupError::Config)?;
    let outbox = Outbox::new();
    let app = Arc::new(IdentityApp::new(
        db.clone(),
        Arc::new(config),
        keys,
        outbox.clone(),
        memberships,
        avatars,
    ));
    Ok(Identity {
        app,
        remote_keys,
        db,
        outbox,
        bus: deps.bus,
        internal: deps.internal,
        rate: deps.rate,
    })
}

impl Identity {
    pub fn app(&self) -> Arc<IdentityApp> {
        self.app.clone()
    }

    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn mount(&self, grpc: &mut GrpcServer) {
        let server = &self.app.config().server;
        let rate = &self.rate;
        grpc.add_service(
            SessionServiceServer::new(grpc::SessionGrpc::new(
                self.app.clone(),
                rate.clone(),
                self.internal.clone(),
            ))
            .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            IdentityServiceServer::new(grpc::IdentityGrpc::new(self.app.clone(), rate.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            ServerInfoServiceServer::new(grpc::ServerInfoGrpc::new(self.app.clone(), rate.clone()))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
        )
        .add_service(
            S2sAuthenticated::new(
                IdentityFederationServiceServer::new(grpc::IdentityFederationGrpc::new(
                    self.app.clone(),
                )),
                server.origin.clone(),
                server.insecure_dev,
                server.federation.clone(),
                self.remote_keys.clone(),
            )
            .rate_limited(rate.clone()),
        )
        .add_service(ServerKeyInternalServiceServer::with_interceptor(
            grpc::ServerKeyInternalGrpc::new(self.app.clone()),
            self.internal.clone(),
        ))
        .add_service(SessionInternalServiceServer::with_interceptor(
            grpc::SessionInternalGrpc::new(self.app.clone()),
            self.internal.clone(),
        ));
    }

    /// Starts the outbox relay, key rotation, cleanup, and the federation work (results from
    /// home servers, shadow refreshes); they stop at `shutdown`.
    pub fn spawn(&self, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        let relay = OutboxRelay::new(self.db.clone(), self.bus.clone(), &self.outbox, SERVICE);
        let relay_task = tokio::spawn(relay.run(shutdown.clone()));
        let results_task = tokio::spawn(federation_tasks::consume_results(
            self.bus.clone(),
            self.app.clone(),
            shutdown.clone(),
        ));
        let refresh_task = tokio::spawn(federation_tasks::refresh_shadows(
            self.app.clone(),
            shutdown.clone(),
        ));
        let app = self.app.clone();
        let db = self.db.clone();
        let token = shutdown.clone();
        let keys_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_REFRESH);
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(err) = app.keys().refresh(&db, db::now_millis()).await {
                    tracing::error!(error = %err, "key refresh failed");
                }
            }
        });
        let db = self.db.clone();
        let cleanup_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(CLEANUP);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                match store::cleanup(&db, db::now_millis()).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::debug!(removed, "identity cleanup"),
                    Err(err) => tracing::error!(error = %err, "identity cleanup failed"),
                }
            }
        });
        vec![
            relay_task,
            keys_task,
            cleanup_task,
            results_task,
            refresh_task,
        ]
    }
}
