//! Uploads (PROTOCOL.md section 11): the file is cut into chunks, each sent with its SHA-256,
//! several at a time, each retried when the server or the network fails it; completion sends
//! the SHA-256 of the chunk digests. An interrupted upload of a file on disk resumes: the
//! upload id is kept beside the client's keys, and the server says which chunks it has.

use std::{
    collections::HashSet,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use mzchat_proto::media::{
    CompleteUploadRequest, File, GetUploadRequest, StartUploadRequest, UploadChunkRequest,
    UploadPurpose, media_service_client::MediaServiceClient,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{Client, ClientError};

/// The protocol's default chunk size.
pub const CHUNK_BYTES: u64 = 5 * 1024 * 1024;
const ATTEMPTS: u32 = 6;

/// Where the bytes come from.
#[derive(Clone)]
pub enum Source {
    Memory(bytes::Bytes),
    Disk(std::path::PathBuf),
}

impl Source {
    async fn len(&self) -> Result<u64, ClientError> {
        match self {
            Source::Memory(data) => Ok(data.len() as u64),
            Source::Disk(path) => Ok(tokio::fs::metadata(path).await.map_err(local)?.len()),
        }
    }

    async fn chunk(&self, offset: u64, len: u64) -> Result<Vec<u8>, ClientError> {
        match self {
            Source::Memory(data) => Ok(data[offset as usize..(offset + len) as usize].to_vec()),
            Source::Disk(path) => {
                let mut file = tokio::fs::File::open(path).await.map_err(local)?;
                file.seek(std::io::SeekFrom::Start(offset))
                    .await
                    .map_err(local)?;
                let mut buf = vec![0; len as usize];
                file.read_exact(&mut buf).await.map_err(local)?;
                Ok(buf)
            }
        }
    }
}

fn local(err: impl std::fmt::Display) -> ClientError {
    ClientError::Local(err.to_string())
}

/// One upload to make.
pub struct UploadJob<'a> {
    pub origin: &'a str,
    pub file_name: String,
    pub content_type: String,
    pub purpose: UploadPurpose,
    pub source: Source,
    /// Chunks in flight at once.
    pub parallel: usize,
    /// Called with (bytes sent, total) as chunks are acknowledged.
    pub progress: Option<Arc<dyn Fn(u64, u64) + Send + Sync>>,
}

/// Failures worth another try: the server or the network, not the request.
fn transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Aborted
            | tonic::Code::ResourceExhausted
            | tonic::Code::Unknown
            | tonic::Code::Internal
    )
}

impl Client {
    /// Uploads the job's bytes; returns the file. `resume` names an earlier upload of the same
    /// bytes to continue (its stored chunks are not sent again).
    pub async fn upload(
        &self,
        job: UploadJob<'_>,
        resume: Option<&str>,
    ) -> Result<(File, String), ClientError> {
        let size = job.source.len().await?;
        let chunk_count = size.div_ceil(CHUNK_BYTES).max(1);
        let chunk_len = |i: u64| (size - i * CHUNK_BYTES).min(CHUNK_BYTES);
        // Every chunk's digest, for the composite hash (resumed chunks included).
        let mut digests = Vec::with_capacity(chunk_count as usize);
        for i in 0..chunk_count {
            let data = job.source.chunk(i * CHUNK_BYTES, chunk_len(i)).await?;
            digests.push(Sha256::digest(&data).to_vec());
        }
        let mut api = MediaServiceClient::new(self.channel(job.origin)?)
            .max_decoding_message_size(16 * 1024 * 1024);
        let mut have = HashSet::new();
        let mut upload_id = None;
        if let Some(id) = resume
            && let Some(received) = self.resumable(job.origin, id, size).await?
        {
            have.extend(received);
            upload_id = Some(id.to_owned());
        }
        let upload_id = match upload_id {
            Some(id) => id,
            None => self.start_upload(&job).await?,
        };
        let sent = Arc::new(AtomicU64::new(
            have.iter().map(|i| chunk_len(u64::from(*i))).sum(),
        ));
        let todo: Vec<u64> = (0..chunk_count)
            .filter(|i| !have.contains(&(*i as u32)))
            .collect();
        let queue = Arc::new(std::sync::Mutex::new(todo.into_iter()));
        let mut workers = Vec::new();
        for _ in 0..job.parallel.max(1) {
            let (queue, sent, api) = (queue.clone(), sent.clone(), api.clone());
            let (source, origin, id) = (job.source.clone(), job.origin, upload_id.clone());
            let (digests, progress) = (&digests, job.progress.clone());
            workers.push(async move {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(index) = next else {
                        return Ok::<(), ClientError>(());
                    };
                    let data = source.chunk(index * CHUNK_BYTES, chunk_len(index)).await?;
                    self.send_chunk(
                        api.clone(),
                        origin,
                        &id,
                        index as u32,
                        &digests[index as usize],
                        data,
                    )
                    .await?;
                    let done =
                        sent.fetch_add(chunk_len(index), Ordering::Relaxed) + chunk_len(index);
                    if let Some(progress) = &progress {
                        progress(done, size);
                    }
                }
            });
        }
        futures::future::try_join_all(workers).await?;
        let composite = Sha256::digest(digests.concat()).to_vec();
        let request = self
            .authed(
                job.origin,
                CompleteUploadRequest {
                    upload_id: upload_id.clone(),
                    sha256: composite,
                },
            )
            .await?;
        let file = api
            .complete_upload(request)
            .await?
            .into_inner()
            .file
            .ok_or_else(|| local("the server returned no file"))?;
        Ok((file, upload_id))
    }

    /// The chunks the server has of upload `id`, if it can be continued with these bytes (same
    /// size and chunking); None when it has expired or differs.
    async fn resumable(
        &self,
        origin: &str,
        id: &str,
        size: u64,
    ) -> Result<Option<Vec<u32>>, ClientError> {
        let request = self
            .authed(
                origin,
                GetUploadRequest {
                    upload_id: id.into(),
                },
            )
            .await?;
        let upload = match MediaServiceClient::new(self.channel(origin)?)
            .get_upload(request)
            .await
        {
            Ok(answer) => answer.into_inner().upload,
            Err(status) if status.code() == tonic::Code::NotFound => None,
            Err(status) => return Err(status.into()),
        };
        Ok(upload
            .filter(|u| u.size == size && u64::from(u.chunk_size) == CHUNK_BYTES)
            .map(|u| u.received_chunks))
    }

    /// Declares the job's upload; returns its id (to resume with, should sending fail).
    pub async fn start_upload(&self, job: &UploadJob<'_>) -> Result<String, ClientError> {
        let size = job.source.len().await?;
        let request = StartUploadRequest {
            file_name: job.file_name.clone(),
            content_type: job.content_type.clone(),
            size,
            chunk_size: CHUNK_BYTES as u32,
            chunk_count: size.div_ceil(CHUNK_BYTES).max(1) as u32,
            purpose: job.purpose as i32,
        };
        let request = self.authed(job.origin, request).await?;
        Ok(MediaServiceClient::new(self.channel(job.origin)?)
            .start_upload(request)
            .await?
            .into_inner()
            .upload_id)
    }

    async fn send_chunk(
        &self,
        mut api: MediaServiceClient<tonic::transport::Channel>,
        origin: &str,
        upload_id: &str,
        index: u32,
        sha256: &[u8],
        data: Vec<u8>,
    ) -> Result<(), ClientError> {
        let mut wait = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            let request = UploadChunkRequest {
                upload_id: upload_id.into(),
                index,
                sha256: sha256.to_vec(),
                data: data.clone(),
            };
            let request = self.authed(origin, request).await?;
            match api.upload_chunk(request).await {
                Ok(_) => return Ok(()),
                Err(status) if transient(&status) && attempt < ATTEMPTS => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
                Err(status) => return Err(status.into()),
            }
        }
        Ok(())
    }

    /// Uploads a file from disk, resuming an interrupted upload of the same file (same path,
    /// size and modification time) to the same server.
    pub async fn upload_path(
        &self,
        origin: &str,
        path: &Path,
        purpose: UploadPurpose,
        parallel: usize,
        progress: Option<Arc<dyn Fn(u64, u64) + Send + Sync>>,
    ) -> Result<File, ClientError> {
        let marker = self.upload_marker(origin, path)?;
        let absolute = std::fs::canonicalize(path).map_err(local)?;
        let resume = std::fs::read_to_string(&marker).ok();
        let job = UploadJob {
            origin,
            file_name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            content_type: String::new(),
            purpose,
            source: Source::Disk(absolute),
            parallel,
            progress,
        };
        let result = self
            .upload_marked(job, resume.as_deref().map(str::trim), &marker)
            .await;
        if result.is_ok() {
            let _ = std::fs::remove_file(&marker);
        }
        result
    }

    /// The upload of this file to `origin` that an earlier run left unfinished, if any.
    pub fn pending_upload(&self, origin: &str, path: &Path) -> Option<String> {
        let marker = self.upload_marker(origin, path).ok()?;
        std::fs::read_to_string(marker)
            .ok()
            .map(|id| id.trim().to_owned())
    }

    /// Where the id of an unfinished upload of this file (same path, size and modification
    /// time) to `origin` is kept.
    fn upload_marker(&self, origin: &str, path: &Path) -> Result<std::path::PathBuf, ClientError> {
        let meta = std::fs::metadata(path).map_err(local)?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let absolute = std::fs::canonicalize(path).map_err(local)?;
        let key = hex::encode(Sha256::digest(format!(
            "{origin}\n{}\n{}\n{modified}",
            absolute.display(),
            meta.len()
        )));
        Ok(self.store().dir().join("uploads").join(key))
    }

    async fn upload_marked(
        &self,
        job: UploadJob<'_>,
        resume: Option<&str>,
        marker: &Path,
    ) -> Result<File, ClientError> {
        // Declared first, and remembered, so an interruption can be resumed.
        let size = job.source.len().await?;
        let started = match resume {
            Some(id) if self.resumable(job.origin, id, size).await?.is_some() => id.to_owned(),
            _ => self.start_upload(&job).await?,
        };
        if let Some(dir) = marker.parent() {
            std::fs::create_dir_all(dir).map_err(local)?;
        }
        std::fs::write(marker, &started).map_err(local)?;
        Ok(self.upload(job, Some(&started)).await?.0)
    }
}
