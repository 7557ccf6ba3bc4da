//! What the media service does, apart from the wire: uploads (app/uploads.rs), files
//! (app/files.rs) and the removal of what is left behind (app/sweep.rs).

mod files;
mod sweep;
mod uploads;

use std::sync::Arc;

use mzchat_platform::{DomainError, ErrorKind, LimitsArgs};
use sea_orm::DatabaseConnection;

use crate::{
    blob::{BlobError, BlobStore},
    config::MediaSettings,
    store::files::File,
};

pub use uploads::{ChunkUpload, NewUpload};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("storage error")]
    Store(#[from] sea_orm::DbErr),
}

impl DomainError for MediaError {
    fn kind(&self) -> ErrorKind {
        match self {
            MediaError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            MediaError::NotFound(_) => ErrorKind::NotFound,
            MediaError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            MediaError::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            MediaError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            MediaError::ResourceExhausted(_) => ErrorKind::ResourceExhausted,
            MediaError::Unavailable(_) => ErrorKind::Unavailable,
            MediaError::Store(_) => ErrorKind::Internal,
        }
    }
}

impl From<BlobError> for MediaError {
    fn from(err: BlobError) -> Self {
        tracing::warn!(error = %err, "object store call failed");
        MediaError::Unavailable(
            "the file store is unavailable right now; try again (stored chunks are kept)".into(),
        )
    }
}

pub type Result<T, E = MediaError> = std::result::Result<T, E>;

pub struct MediaApp {
    db: DatabaseConnection,
    blobs: Arc<dyn BlobStore>,
    settings: MediaSettings,
    limits: LimitsArgs,
    /// `<assets origin>/`, which file URLs start with.
    assets_base: String,
    pub metrics: MediaMetrics,
}

/// Bytes stored, files made and bytes served by this process.
#[derive(Clone, Default)]
pub struct MediaMetrics {
    pub uploaded_bytes: prometheus_client::metrics::counter::Counter,
    pub files_completed: prometheus_client::metrics::counter::Counter,
    /// Bytes the assets origin started to send (whole files and ranges).
    pub served_bytes: prometheus_client::metrics::counter::Counter,
}

impl MediaMetrics {
    pub fn register(&self, metrics: &mzchat_platform::metrics::Metrics) {
        metrics.register(
            "media_uploaded_bytes",
            "Chunk bytes stored by uploads",
            self.uploaded_bytes.clone(),
        );
        metrics.register(
            "media_files_completed",
            "Uploads completed into files",
            self.files_completed.clone(),
        );
        metrics.register(
            "media_served_bytes",
            "Bytes the assets origin served (whole files and ranges)",
            self.served_bytes.clone(),
        );
    }
}

impl MediaApp {
    pub fn new(
        db: DatabaseConnection,
        blobs: Arc<dyn BlobStore>,
        settings: MediaSettings,
        limits: LimitsArgs,
        assets_origin: &str,
    ) -> Self {
        Self {
            db,
            blobs,
            settings,
            limits,
            assets_base: format!("{}/", assets_origin.trim_end_matches('/')),
            metrics: MediaMetrics::default(),
        }
    }

    pub fn url_of(&self, file_id: &str) -> String {
        format!("{}{file_id}", self.assets_base)
    }

    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    pub fn settings(&self) -> &MediaSettings {
        &self.settings
    }

    /// A live file, for the assets origin.
    pub async fn served_file(&self, file_id: &str) -> Result<Option<File>> {
        Ok(crate::store::files::find_live(&self.db, file_id).await?)
    }
}

/// The object key of an upload's bytes.
pub fn object_key(upload_id: &str) -> String {
    format!("files/{upload_id}")
}
