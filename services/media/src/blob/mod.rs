//! Where the bytes live: an S3-compatible store (multipart uploads, parts = chunks) or a
//! directory (the one-process mode), behind one trait. Keys are `files/<upload uuid>`.

mod disk;
mod s3;

use std::{pin::Pin, time::Duration};

use bytes::Bytes;
use futures::Stream;

pub use disk::DiskStore;
pub use s3::{S3Settings, S3Store};

/// Reads from the store go out in pieces of this size (the default 4 KiB made downloads from
/// disk three times slower than from S3).
pub const READ_BUFFER: usize = 64 * 1024;

/// Bytes read from the store, as they arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("not in the store")]
    NotFound,
    #[error("the object store is unavailable: {0}")]
    Unavailable(String),
}

/// The response headers a file is served with (also asked of a presigned URL).
#[derive(Debug, Clone)]
pub struct Served {
    pub content_type: String,
    pub content_disposition: String,
    pub cache_control: String,
}

/// A byte range, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

#[async_trait::async_trait]
pub trait BlobStore: Send + Sync {
    /// Starts a multipart upload of `key`; returns the store's id for it.
    async fn begin(&self, key: &str) -> Result<String, BlobError>;
    /// Stores part `index` (0-based); returns the store's tag for it.
    async fn put_part(
        &self,
        key: &str,
        upload: &str,
        index: u32,
        data: Bytes,
    ) -> Result<String, BlobError>;
    /// Joins the parts, in index order, into the object `key`.
    async fn complete(
        &self,
        key: &str,
        upload: &str,
        parts: &[(u32, String)],
    ) -> Result<(), BlobError>;
    /// Drops an unfinished upload and its parts (nothing to drop is not an error).
    async fn abort(&self, key: &str, upload: &str) -> Result<(), BlobError>;
    /// Streams the object, or a range of it.
    async fn read(&self, key: &str, range: Option<Range>) -> Result<ByteStream, BlobError>;
    /// Removes the object (already gone is not an error).
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// A URL that serves the object for `ttl` without credentials, with these response
    /// headers, where the store has such URLs.
    async fn presign(&self, key: &str, ttl: Duration, headers: &Served) -> Option<String>;
    /// Whether the store answers (readiness).
    async fn check(&self) -> Result<(), BlobError>;
}
