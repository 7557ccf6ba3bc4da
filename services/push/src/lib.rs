//! The push-relay service (PROTOCOL.md section 9): where each device of a user homed here wants
//! its pushes (UnifiedPush, ntfy, Web Push endpoints and FCM tokens), with endpoints vetted as
//! untrusted URLs. Registrations go with a device when identity revokes it.
//!
//! Mentions in guilds here are pushed to the devices of users homed here (queued, encrypted
//! per RFC 8291 when the device gave keys, retried within the push's TTL); mentions of users
//! homed elsewhere are relayed through their home server with the delegation token it gave
//! this server, and pushes other servers relay here are checked and delivered the same way.
//! Devices with an FCM token are pushed through FCM HTTP v1 when the server has a service
//! account for it.

mod app;
mod config;
pub mod deliver;
pub mod endpoint;
pub mod fcm;
mod grpc;
mod mentions;
mod metrics;
mod relay;
mod sender;
mod store;
pub mod webpush;

use std::{sync::Arc, time::Duration};

use mzchat_platform::{
    ServerConfig,
    bus::{Bus, ConsumerSpec, Envelope, HandlerError, consume_forever, streams},
    db::{self, DatabaseTarget, DbSetupError},
    federation::{RemoteKeys, S2sAuthenticated},
    grpc::{GrpcServer, InternalAuth, MAX_REQUEST_BYTES},
    outbox::{Outbox, OutboxRelay},
    rate_limit::RateLimiter,
    session_keys::SessionKeys,
};
use mzchat_proto::{
    federation::{FederationResult, push_federation_service_server::PushFederationServiceServer},
    guild::Event,
    identity::DeviceRevoked,
    push::push_service_server::PushServiceServer,
};
use mzchat_push_migration::Migrator;
use prost::Message;
use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use app::PushError;
pub use config::{PushArgs, PushSettings};

use crate::{
    app::PushApp, deliver::Deliverer, endpoint::EndpointGuard, fcm::Fcm, mentions::Mentions,
    relay::Relay, sender::Sender,
};

pub const SERVICE: &str = "push";

#[derive(Debug, Clone)]
pub struct PushConfig {
    pub server: ServerConfig,
    /// Where identity answers (its session keys verify access tokens).
    pub identity_url: String,
    pub settings: PushSettings,
    /// Where the guild service's internal API answers (who a mention pushes).
    pub guild_internal_url: String,
    /// Where federation-sync's internal API answers (other servers' keys).
    pub federation_internal_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("{0}")]
    Config(String),
}

pub struct Push {
    config: PushConfig,
    outbox: Outbox,
    relay: Arc<Relay>,
    remote_keys: Arc<RemoteKeys>,
    app: Arc<PushApp>,
    keys: Arc<SessionKeys>,
    db: DatabaseConnection,
    bus: Arc<dyn Bus>,
    mentions: Arc<Mentions>,
    sender: Arc<Sender>,
    rate: Arc<RateLimiter>,
}

pub async fn migrate(config: &ServerConfig) -> Result<(), DbSetupError> {
    let db = db::connect(&DatabaseTarget::for_service(config, SERVICE), 1).await?;
    db::migrate::<Migrator>(&db).await
}

pub async fn build(
    config: PushConfig,
    bus: Arc<dyn Bus>,
    internal: InternalAuth,
    rate: Arc<RateLimiter>,
) -> Result<Push, SetupError> {
    let target = DatabaseTarget::for_service(&config.server, SERVICE);
    let db = db::connect(&target, config.server.database_max_connections).await?;
    if config.server.migrate {
        db::migrate::<Migrator>(&db).await?;
    }
    let keys = SessionKeys::new(&config.identity_url, config.server.origin.as_str())
        .map_err(|e| SetupError::Config(e.to_string()))?;
    let outbox = Outbox::new();
    let settings = &config.settings;
    let fcm = match &settings.fcm {
        Some(fcm) => Some(
            Fcm::from_service_account(&fcm.service_account_json, &fcm.base_url)
                .map_err(SetupError::Config)?,
        ),
        None => None,
    };
    let fcm_enabled = fcm.is_some();
    let guard = EndpointGuard::new(&settings.allowed_endpoint_hosts);
    let sender = Arc::new(Sender::new(db.clone(), Deliverer::new(guard.clone()), fcm));
    let relay = Relay::new(
        db.clone(),
        config.server.origin.clone(),
        &config.identity_url,
        internal.clone(),
        sender.wake.clone(),
        settings,
        rate.clone(),
    )
    .map_err(SetupError::Config)?;
    let remote_keys = RemoteKeys::new(&config.federation_internal_url, internal.clone())
        .map_err(SetupError::Config)?;
    let app = PushApp::new(
        db.clone(),
        config.server.origin.to_string(),
        guard,
        fcm_enabled,
    );
    let mentions = Mentions::new(
        db.clone(),
        outbox.clone(),
        &config.guild_internal_url,
        internal,
        config.server.origin.to_string(),
        settings,
        sender.wake.clone(),
    )
    .map_err(SetupError::Config)?;
    Ok(Push {
        app: Arc::new(app),
        keys: Arc::new(keys),
        mentions: Arc::new(mentions),
        sender,
        relay: Arc::new(relay),
        remote_keys: Arc::new(remote_keys),
        outbox,
        config,
        db,
        bus,
        rate,
    })
}

impl Push {
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Adds the delivery metrics to the process's registry.
    pub fn register_metrics(&self, metrics: &mzchat_platform::metrics::Metrics) {
        self.sender.metrics.register(metrics);
    }

    pub fn mount(&self, server: &mut GrpcServer) {
        let config = &self.config.server;
        server
            .add_service(
                PushServiceServer::new(grpc::PushGrpc::new(self.app.clone(), self.keys.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                S2sAuthenticated::new(
                    PushFederationServiceServer::new(grpc::PushFederationGrpc::new(
                        self.relay.clone(),
                    )),
                    config.origin.clone(),
                    config.insecure_dev,
                    config.federation.clone(),
                    self.remote_keys.clone(),
                )
                .rate_limited(self.rate.clone()),
            );
    }

    /// Follows identity's device revocations and the guilds' mentions, and sends queued
    /// pushes, until `shutdown`.
    pub fn spawn(&self, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(forget_revoked_devices(
                self.app.clone(),
                self.bus.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(follow_mentions(
                self.mentions.clone(),
                self.bus.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(self.mentions.clone().run_fanouts(shutdown.clone())),
            tokio::spawn(hold_delegations(
                self.relay.clone(),
                self.bus.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(
                OutboxRelay::new(self.db.clone(), self.bus.clone(), &self.outbox, SERVICE)
                    .run(shutdown.clone()),
            ),
            tokio::spawn(self.sender.clone().run(shutdown)),
        ]
    }
}

async fn hold_delegations(relay: Arc<Relay>, bus: Arc<dyn Bus>, shutdown: CancellationToken) {
    let spec = ConsumerSpec {
        stream: streams::FEDERATION_RESULTS,
        durable: "push-delegations".into(),
        filter: "federation.v1.result.user_verified".into(),
        max_deliver: 50,
        ack_wait: Duration::from_secs(30),
        ordered: true,
    };
    let handler = move |envelope: Envelope| {
        let relay = relay.clone();
        async move {
            let result = FederationResult::decode(envelope.payload.as_ref())
                .map_err(|e| HandlerError::Permanent(format!("malformed result: {e}")))?;
            relay
                .hold(&result)
                .await
                .map_err(|e| HandlerError::Transient(e.to_string(), Duration::from_secs(2)))
        }
    };
    consume_forever(bus, spec, shutdown, handler).await;
}

async fn follow_mentions(mentions: Arc<Mentions>, bus: Arc<dyn Bus>, shutdown: CancellationToken) {
    let spec = ConsumerSpec {
        stream: streams::GUILD,
        durable: "push-mentions".into(),
        filter: "guild.v1.g.*.message.created".into(),
        max_deliver: 50,
        ack_wait: Duration::from_secs(30),
        ordered: false,
    };
    let handler = move |envelope: Envelope| {
        let mentions = mentions.clone();
        async move {
            let event = Event::decode(envelope.payload.as_ref())
                .map_err(|e| HandlerError::Permanent(format!("malformed guild event: {e}")))?;
            mentions
                .on_event(&event)
                .await
                .map_err(|e| HandlerError::Transient(e.to_string(), Duration::from_secs(2)))
        }
    };
    consume_forever(bus, spec, shutdown, handler).await;
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
    consume_forever(bus, spec, shutdown, handler).await;
}
