//! The store as an S3-compatible bucket: one multipart upload per upload, part N+1 for chunk N
//! (S3 numbers parts from 1), reads with HTTP ranges, presigned GETs for redirects. Path-style
//! or virtual-hosted addressing; static credentials; TLS through rustls on ring like the rest
//! of the server.

use std::time::Duration;

use aws_sdk_s3::{
    Client,
    config::{Credentials, Region, timeout::TimeoutConfig},
    error::{ProvideErrorMetadata, SdkError},
    presigning::PresigningConfig,
    primitives::ByteStream as S3Body,
    types::{CompletedMultipartUpload, CompletedPart},
};
use aws_smithy_http_client::{
    Builder,
    tls::{self, rustls_provider::CryptoMode},
};
use bytes::Bytes;
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use super::{BlobError, BlobStore, ByteStream, Range, Served};

/// How to reach the bucket.
#[derive(Clone)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Path-style addressing (`endpoint/bucket/key`), as most self-hosted stores want.
    pub path_style: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("path_style", &self.path_style)
            .finish_non_exhaustive()
    }
}

pub struct S3Store {
    client: Client,
    bucket: String,
}

fn unavailable<E: std::fmt::Debug + ProvideErrorMetadata>(err: SdkError<E>) -> BlobError {
    let detail = match &err {
        SdkError::ServiceError(service) => format!(
            "{}: {}",
            service.err().code().unwrap_or("error"),
            service.err().message().unwrap_or("no message")
        ),
        other => format!("{other:?}").chars().take(300).collect(),
    };
    BlobError::Unavailable(detail)
}

fn is_code<E: ProvideErrorMetadata>(err: &SdkError<E>, codes: &[&str]) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| codes.contains(&code))
}

impl S3Store {
    /// Connects, and creates the bucket when it does not exist.
    pub async fn open(settings: &S3Settings) -> Result<Self, BlobError> {
        let http = Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let credentials = Credentials::new(
            &settings.access_key_id,
            &settings.secret_access_key,
            None,
            None,
            "mzchat-config",
        );
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(settings.path_style)
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            );
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        let store = Self {
            client: Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
        };
        // A store that is down at start is not fatal: calls fail with UNAVAILABLE until it is up.
        if let Err(err) = store.ensure_bucket().await {
            tracing::warn!(error = %err, bucket = %store.bucket, "the S3 bucket cannot be checked yet");
        }
        Ok(store)
    }

    async fn ensure_bucket(&self) -> Result<(), BlobError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 404) =>
            {
                tracing::info!(bucket = %self.bucket, "creating the media bucket");
                match self
                    .client
                    .create_bucket()
                    .bucket(&self.bucket)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(err)
                        if is_code(&err, &["BucketAlreadyOwnedByYou", "BucketAlreadyExists"]) =>
                    {
                        Ok(())
                    }
                    Err(err) => Err(unavailable(err)),
                }
            }
            Err(err) => Err(unavailable(err)),
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    async fn begin(&self, key: &str) -> Result<String, BlobError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(unavailable)?;
        created
            .upload_id()
            .map(str::to_owned)
            .ok_or_else(|| BlobError::Unavailable("the store gave no upload id".into()))
    }

    async fn put_part(
        &self,
        key: &str,
        upload: &str,
        index: u32,
        data: Bytes,
    ) -> Result<String, BlobError> {
        let length = data.len() as i64;
        let part = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .part_number(index as i32 + 1)
            .content_length(length)
            .body(S3Body::from(data))
            .send()
            .await
            .map_err(|err| {
                if is_code(&err, &["NoSuchUpload"]) {
                    BlobError::NotFound
                } else {
                    unavailable(err)
                }
            })?;
        part.e_tag()
            .map(str::to_owned)
            .ok_or_else(|| BlobError::Unavailable("the store gave no part ETag".into()))
    }

    async fn complete(
        &self,
        key: &str,
        upload: &str,
        parts: &[(u32, String)],
    ) -> Result<(), BlobError> {
        let parts = parts
            .iter()
            .map(|(index, tag)| {
                CompletedPart::builder()
                    .part_number(*index as i32 + 1)
                    .e_tag(tag)
                    .build()
            })
            .collect();
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A completion retried after the store finished it: the object is there.
            Err(err) if is_code(&err, &["NoSuchUpload"]) => self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|_| BlobError::NotFound),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn abort(&self, key: &str, upload: &str) -> Result<(), BlobError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_code(&err, &["NoSuchUpload"]) => Ok(()),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn read(&self, key: &str, range: Option<Range>) -> Result<ByteStream, BlobError> {
        let mut get = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(range) = range {
            get = get.range(format!(
                "bytes={}-{}",
                range.start,
                range.end.saturating_sub(1)
            ));
        }
        let object = get.send().await.map_err(|err| {
            if is_code(&err, &["NoSuchKey"]) {
                BlobError::NotFound
            } else {
                unavailable(err)
            }
        })?;
        Ok(ReaderStream::with_capacity(object.body.into_async_read(), super::READ_BUFFER).boxed())
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn presign(&self, key: &str, ttl: Duration, headers: &Served) -> Option<String> {
        let config = PresigningConfig::expires_in(ttl).ok()?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type(&headers.content_type)
            .response_content_disposition(&headers.content_disposition)
            .response_cache_control(&headers.cache_control)
            .presigned(config)
            .await
            .ok()?;
        Some(request.uri().to_owned())
    }

    async fn check(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
