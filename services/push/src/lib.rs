//! The push-relay service (PROTOCOL.md section 9): where each device of a user homed here wants
//! its pushes (UnifiedPush, ntfy, Web Push endpoints and FCM tokens), with endpoints vetted as
//! untrusted URLs. Registrations go with a device when identity revokes it.
//!
//! Not built yet (issue 5): delivery, mention triggers, and the relay between homeservers
//! (`PushFederationService` still answers UNIMPLEMENTED).

mod app;
pub mod deliver;
pub mod endpoint;
mod grpc;
mod store;
pub mod webpush;

use std::{sync::Arc, time::Duration};

use mzchat_platform::{
    ServerConfig,
    bus::{Bus, ConsumerSpec, Envelope, HandlerError, run_consumer, streams},
    db::{self, DatabaseTarget, DbSetupError},
    grpc::GrpcServer,
    session_keys::SessionKeys,
};
use mzchat_proto::{identity::DeviceRevoked, push::push_service_server::PushServiceServer};
use mzchat_push_migration::Migrator;
use prost::Message;
use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use app::PushError;

use crate::{app::PushApp, endpoint::EndpointGuard};

pub const SERVICE: &str = "push";

#[derive(Debug, Clone)]
pub struct PushConfig {
    pub server: ServerConfig,
    /// Where identity answers (its session keys verify access tokens).
    pub identity_url: String,
    /// Endpoint hosts allowed http and private addresses (development).
    pub allowed_endpoint_hosts: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("{0}")]
    Config(String),
}

pub struct Push {
    app: Arc<PushApp>,
    keys: Arc<SessionKeys>,
    db: DatabaseConnection,
    bus: Arc<dyn Bus>,
}

pub async fn migrate(config: &ServerConfig) -> Result<(), DbSetupError> {
    let db = db::connect(&DatabaseTarget::for_service(config, SERVICE), 1).await?;
    db::migrate::<Migrator>(&db).await
}

pub async fn build(config: PushConfig, bus: Arc<dyn Bus>) -> Result<Push, SetupError> {
    let target = DatabaseTarget::for_service(&config.server, SERVICE);
    let db = db::connect(&target, config.server.database_max_connections).await?;
    if config.server.migrate {
        db::migrate::<Migrator>(&db).await?;
    }
    let keys = SessionKeys::new(&config.identity_url, config.server.origin.as_str())
        .map_err(|e| SetupError::Config(e.to_string()))?;
    let app = PushApp::new(
        db.clone(),
        config.server.origin.to_string(),
        EndpointGuard::new(&config.allowed_endpoint_hosts),
    );
    Ok(Push {
        app: Arc::new(app),
        keys: Arc::new(keys),
        db,
        bus,
    })
}

impl Push {
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn mount(&self, server: &mut GrpcServer) {
        server.add_service(PushServiceServer::new(grpc::PushGrpc::new(
            self.app.clone(),
            self.keys.clone(),
        )));
    }

    /// Follows identity's device revocations until `shutdown`.
    pub fn spawn(&self, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        vec![tokio::spawn(forget_revoked_devices(
            self.app.clone(),
            self.bus.clone(),
            shutdown,
        ))]
    }
}

async fn forget_revoked_devices(app: Arc<PushApp>, bus: Arc<dyn Bus>, shutdown: CancellationToken) {
    let spec = ConsumerSpec {
        stream: streams::IDENTITY,
        durable: "push-revocations".into(),
        filter: "identity.v1.device.revoked".into(),
        max_deliver: 50,
        ack_wait: Duration::from_secs(30),
        ordered: false,
    };
    let handler = move |envelope: Envelope| {
        let app = app.clone();
        async move {
            let revoked = DeviceRevoked::decode(envelope.payload.as_ref())
                .map_err(|e| HandlerError::Permanent(format!("malformed revocation: {e}")))?;
            let forgotten = app
                .forget_device(&revoked.user_id, &revoked.device_id)
                .await
                .map_err(|e| HandlerError::Transient(e.to_string(), Duration::from_secs(2)))?;
            if forgotten > 0 {
                tracing::info!(user_id = %revoked.user_id, device_id = %revoked.device_id, "push registrations of a revoked device removed");
            }
            Ok(())
        }
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        match run_consumer(bus.clone(), spec.clone(), shutdown.clone(), handler.clone()).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot follow device revocations yet; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
