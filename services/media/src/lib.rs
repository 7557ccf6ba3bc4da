//! The media service (PROTOCOL.md section 11): chunked uploads checked by SHA-256 chunk by chunk
//! and as a whole, files whose type is sniffed from their bytes, kept in an S3-compatible bucket
//! (multipart uploads) or a directory, served over HTTP on the assets origin, with per-purpose
//! size limits, a per-user quota, and unfinished uploads swept after their expiry.

mod app;
pub mod assets;
pub mod blob;
mod chunk_limit;
mod config;
mod grpc;
pub mod sniff;
mod store;

use std::{sync::Arc, time::Duration};

use mzchat_media_migration::Migrator;
use mzchat_platform::{
    LimitsArgs, ServerConfig,
    db::{self, DatabaseTarget, DbSetupError},
    grpc::{GrpcServer, InternalAuth},
    rate_limit::RateLimiter,
    session_keys::SessionKeys,
};
use mzchat_proto::media::{
    media_internal_service_server::MediaInternalServiceServer,
    media_service_server::MediaServiceServer,
};
use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use app::MediaError;
pub use config::{MediaArgs, MediaSettings};

use crate::{
    app::MediaApp,
    blob::{BlobError, BlobStore, DiskStore, S3Store},
    config::Store,
};

pub const SERVICE: &str = "media";
/// UploadChunk carries up to 8 MiB of data; requests up to this size are accepted.
pub const MAX_REQUEST_BYTES: usize = 9 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct MediaConfig {
    pub server: ServerConfig,
    pub limits: LimitsArgs,
    /// Where identity answers (its session keys verify access tokens).
    pub identity_url: String,
    pub settings: MediaSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("object store: {0}")]
    Store(#[from] BlobError),
    #[error("{0}")]
    Config(String),
}

pub struct Media {
    app: Arc<MediaApp>,
    keys: Arc<SessionKeys>,
    db: DatabaseConnection,
    sweep_every: Duration,
}

pub async fn migrate(config: &ServerConfig) -> Result<(), DbSetupError> {
    let db = db::connect(&DatabaseTarget::for_service(config, SERVICE), 1).await?;
    db::migrate::<Migrator>(&db).await
}

pub async fn build(config: MediaConfig) -> Result<Media, SetupError> {
    let target = DatabaseTarget::for_service(&config.server, SERVICE);
    let db = db::connect(&target, config.server.database_max_connections).await?;
    if config.server.migrate {
        db::migrate::<Migrator>(&db).await?;
    }
    let keys = SessionKeys::new(&config.identity_url, config.server.origin.as_str())
        .map_err(|e| SetupError::Config(e.to_string()))?;
    let blobs: Arc<dyn BlobStore> = match &config.settings.store {
        Store::Disk(dir) => Arc::new(DiskStore::open(dir).await?),
        Store::S3(s3) => Arc::new(S3Store::open(s3).await?),
    };
    // Expired uploads go within a quarter of their lifetime, and at least every ten minutes.
    let sweep_every =
        (config.settings.upload_expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
    let app = MediaApp::new(
        db.clone(),
        blobs,
        config.settings,
        config.limits,
        config.server.assets_origin.as_str(),
    );
    Ok(Media {
        app: Arc::new(app),
        keys: Arc::new(keys),
        db,
        sweep_every,
    })
}

/// Whether the object store answers, for readiness.
#[derive(Clone)]
pub struct StoreProbe(Arc<dyn BlobStore>);

impl StoreProbe {
    pub async fn check(&self) -> Result<(), String> {
        self.0.check().await.map_err(|e| e.to_string())
    }
}

impl Media {
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Adds upload metrics to the process's registry.
    pub fn register_metrics(&self, metrics: &mzchat_platform::metrics::Metrics) {
        self.app.metrics.register(metrics);
    }

    pub fn store_probe(&self) -> StoreProbe {
        StoreProbe(self.app.blobs().clone())
    }

    pub fn mount(&self, server: &mut GrpcServer, internal: &InternalAuth, rate: Arc<RateLimiter>) {
        server
            .add_service(chunk_limit::ChunkLimit::new(
                MediaServiceServer::new(grpc::MediaGrpc::new(
                    self.app.clone(),
                    self.keys.clone(),
                    rate,
                ))
                .max_decoding_message_size(MAX_REQUEST_BYTES),
                chunk_limit::CHUNKS_IN_FLIGHT,
            ))
            .add_service(MediaInternalServiceServer::with_interceptor(
                grpc::MediaInternalGrpc::new(self.app.clone()),
                internal.clone(),
            ));
    }

    /// Serves the assets origin on `assets` and sweeps expired uploads, until `shutdown`.
    pub fn spawn(
        &self,
        assets: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let (app, every) = (self.app.clone(), self.sweep_every);
        let sweeper = shutdown.clone();
        vec![
            tokio::spawn(assets::run(assets, self.app.clone(), shutdown)),
            tokio::spawn(async move { app.sweep_forever(every, sweeper).await }),
        ]
    }
}
