//! The store as a directory: parts under `parts/<id>/<index>`, objects under `objects/<id>`.
//! Every write goes to a temporary name first and is renamed into place, so a crash leaves no
//! half-written part or object under its real name.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::{BlobError, BlobStore, ByteStream, READ_BUFFER, Range};

pub struct DiskStore {
    root: PathBuf,
}

fn io(err: std::io::Error) -> BlobError {
    if err.kind() == std::io::ErrorKind::NotFound {
        BlobError::NotFound
    } else {
        BlobError::Unavailable(err.to_string())
    }
}

/// The id in a key `files/<uuid>`; anything else is refused (no path tricks).
fn id_of(key: &str) -> Result<&str, BlobError> {
    key.strip_prefix("files/")
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .ok_or_else(|| BlobError::Unavailable(format!("not a media key: {key}")))
}

impl DiskStore {
    pub async fn open(root: &Path) -> Result<Self, BlobError> {
        for dir in ["parts", "objects"] {
            tokio::fs::create_dir_all(root.join(dir))
                .await
                .map_err(io)?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    fn parts(&self, key: &str) -> Result<PathBuf, BlobError> {
        Ok(self.root.join("parts").join(id_of(key)?))
    }

    fn object(&self, key: &str) -> Result<PathBuf, BlobError> {
        Ok(self.root.join("objects").join(id_of(key)?))
    }
}

/// A name beside `path` to write to before renaming.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    PathBuf::from(name)
}

#[async_trait::async_trait]
impl BlobStore for DiskStore {
    async fn begin(&self, key: &str) -> Result<String, BlobError> {
        tokio::fs::create_dir_all(self.parts(key)?)
            .await
            .map_err(io)?;
        // Not empty: an empty id means the upload never began in the store.
        Ok("disk".into())
    }

    async fn put_part(
        &self,
        key: &str,
        _upload: &str,
        index: u32,
        data: Bytes,
    ) -> Result<String, BlobError> {
        let dir = self.parts(key)?;
        if !tokio::fs::try_exists(&dir).await.map_err(io)? {
            return Err(BlobError::NotFound);
        }
        let path = dir.join(index.to_string());
        let tmp = temporary(&path);
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            file.write_all(&data).await?;
            file.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(err) = written.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(err));
        }
        Ok(format!("{index}:{}", data.len()))
    }

    async fn complete(
        &self,
        key: &str,
        _upload: &str,
        parts: &[(u32, String)],
    ) -> Result<(), BlobError> {
        let dir = self.parts(key)?;
        let object = self.object(key)?;
        // Completed before (a retry after a crash): the parts are gone, the object is there.
        if !tokio::fs::try_exists(&dir).await.map_err(io)? {
            return match tokio::fs::try_exists(&object).await.map_err(io)? {
                true => Ok(()),
                false => Err(BlobError::NotFound),
            };
        }
        let tmp = temporary(&object);
        let joined = async {
            let mut out = tokio::fs::File::create(&tmp).await?;
            for (index, _) in parts {
                let mut part = tokio::fs::File::open(dir.join(index.to_string())).await?;
                tokio::io::copy(&mut part, &mut out).await?;
            }
            out.sync_all().await?;
            tokio::fs::rename(&tmp, &object).await
        };
        if let Err(err) = joined.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io(err));
        }
        let _ = tokio::fs::remove_dir_all(&dir).await;
        Ok(())
    }

    async fn abort(&self, key: &str, _upload: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_dir_all(self.parts(key)?).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io(err)),
            _ => Ok(()),
        }
    }

    async fn read(&self, key: &str, range: Option<Range>) -> Result<ByteStream, BlobError> {
        let mut file = tokio::fs::File::open(self.object(key)?).await.map_err(io)?;
        let stream = match range {
            Some(range) => {
                file.seek(std::io::SeekFrom::Start(range.start))
                    .await
                    .map_err(io)?;
                ReaderStream::with_capacity(
                    file.take(range.end.saturating_sub(range.start)),
                    READ_BUFFER,
                )
                .boxed()
            }
            None => ReaderStream::with_capacity(file, READ_BUFFER).boxed(),
        };
        Ok(stream)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.object(key)?).await {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io(err)),
            _ => Ok(()),
        }
    }

    async fn presign(
        &self,
        _key: &str,
        _ttl: std::time::Duration,
        _headers: &super::Served,
    ) -> Option<String> {
        None
    }

    async fn check(&self) -> Result<(), BlobError> {
        tokio::fs::metadata(self.root.join("objects"))
            .await
            .map(|_| ())
            .map_err(io)
    }
}
