//! The media service's settings.

use std::{path::PathBuf, time::Duration};

use mzchat_platform::{LimitsArgs, Secret, ServerConfig};

use crate::blob::S3Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// A directory under --data-dir (the one-process mode).
    Disk,
    /// An S3-compatible bucket.
    S3,
}

#[derive(Debug, Clone, clap::Args)]
pub struct MediaArgs {
    /// Where file bytes are kept.
    #[arg(long, env = "MZCHAT_MEDIA_STORE", value_enum, default_value = "disk")]
    pub media_store: StoreKind,
    /// S3 endpoint URL (default: AWS for the region).
    #[arg(long, env = "MZCHAT_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "MZCHAT_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// The bucket (created when missing).
    #[arg(long, env = "MZCHAT_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    #[arg(long, env = "MZCHAT_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "MZCHAT_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<Secret>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted buckets.
    #[arg(long, env = "MZCHAT_S3_PATH_STYLE")]
    pub s3_path_style: bool,
    /// Answer downloads with a redirect to a presigned S3 URL instead of streaming the bytes.
    #[arg(long, env = "MZCHAT_MEDIA_REDIRECT")]
    pub media_redirect: bool,
    /// Seconds an unfinished upload is kept (the protocol says a day).
    #[arg(
        long,
        env = "MZCHAT_MEDIA_UPLOAD_EXPIRY_SECS",
        default_value_t = 86_400
    )]
    pub media_upload_expiry_secs: u64,
    /// Unfinished uploads one user may have at once.
    #[arg(long, env = "MZCHAT_MEDIA_MAX_OPEN_UPLOADS", default_value_t = 20)]
    pub media_max_open_uploads: u32,
    /// Content types attachments may have, e.g. `image/*,application/pdf` (empty: any).
    #[arg(long, env = "MZCHAT_MEDIA_ATTACHMENT_TYPES", value_delimiter = ',')]
    pub media_attachment_types: Vec<String>,
}

/// S3 needs parts of at least 5 MiB except the last, so a file of several chunks uses chunks
/// of at least this size.
pub const MIN_CHUNK_BYTES: u64 = 5 * 1024 * 1024;
/// The protocol's largest chunk.
pub const MAX_CHUNK_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum Store {
    Disk(PathBuf),
    S3(S3Settings),
}

#[derive(Debug, Clone)]
pub struct MediaSettings {
    pub store: Store,
    pub redirect: bool,
    pub upload_expiry: Duration,
    pub max_open_uploads: u32,
    pub attachment_types: Vec<String>,
}

impl MediaArgs {
    pub fn validate(
        self,
        server: &ServerConfig,
        limits: &LimitsArgs,
    ) -> Result<MediaSettings, String> {
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&limits.upload_chunk_bytes)
            || !(limits.upload_chunk_bytes..=MAX_CHUNK_BYTES)
                .contains(&limits.max_upload_chunk_bytes)
        {
            return Err(format!(
                "--upload-chunk-bytes and --max-upload-chunk-bytes must be between {MIN_CHUNK_BYTES} and {MAX_CHUNK_BYTES}, the default at most the maximum"
            ));
        }
        if self.media_upload_expiry_secs == 0 || self.media_max_open_uploads == 0 {
            return Err(
                "--media-upload-expiry-secs and --media-max-open-uploads must be at least 1".into(),
            );
        }
        let store = match self.media_store {
            StoreKind::Disk => Store::Disk(server.data_dir.join("media")),
            StoreKind::S3 => {
                let (Some(bucket), Some(access_key_id), Some(secret_access_key)) = (
                    self.s3_bucket,
                    self.s3_access_key_id,
                    self.s3_secret_access_key,
                ) else {
                    return Err("--media-store s3 needs --s3-bucket, --s3-access-key-id and --s3-secret-access-key".into());
                };
                Store::S3(S3Settings {
                    endpoint: self.s3_endpoint,
                    region: self.s3_region,
                    bucket,
                    access_key_id,
                    secret_access_key: secret_access_key.expose().to_owned(),
                    path_style: self.s3_path_style,
                })
            }
        };
        if self.media_redirect && matches!(store, Store::Disk(_)) {
            return Err("--media-redirect needs --media-store s3".into());
        }
        Ok(MediaSettings {
            store,
            redirect: self.media_redirect,
            upload_expiry: Duration::from_secs(self.media_upload_expiry_secs),
            max_open_uploads: self.media_max_open_uploads,
            attachment_types: self
                .media_attachment_types
                .into_iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
        })
    }
}

impl MediaSettings {
    /// Whether attachments may have this (sniffed) type.
    pub fn attachment_allowed(&self, content_type: &str) -> bool {
        self.attachment_types.is_empty()
            || self.attachment_types.iter().any(|pattern| {
                pattern == content_type
                    || pattern
                        .strip_suffix("/*")
                        .is_some_and(|major| content_type.split('/').next() == Some(major))
            })
    }
}

/// A duration in milliseconds, as the store keeps times.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
