//! Chunked uploads (PROTOCOL.md section 11): declared with their size and chunking, chunks
//! checked against their SHA-256 on arrival (in any order, in parallel, retried safely), the
//! composite hash checked at completion, and the content type sniffed from the bytes.

use mzchat_proto::media::UploadPurpose;
use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use sha2::{Digest, Sha256};

use super::{MediaApp, MediaError, Result, object_key, sweep::COMPLETING_STALE_MS};
use crate::{
    blob::BlobError,
    config::MIN_CHUNK_BYTES,
    sniff::{self, HEAD_BYTES},
    store::{
        files::{self, File},
        uploads::{self, ABORTED, COMPLETE, COMPLETING, Claim, OPEN, Upload},
    },
};

const MAX_NAME_BYTES: usize = 255;
/// S3 numbers parts 1 to 10,000.
const MAX_CHUNKS: u64 = 10_000;

/// What StartUpload asks for.
pub struct NewUpload {
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub chunk_size: u32,
    pub chunk_count: u32,
    pub purpose: i32,
}

/// What UploadChunk brings.
pub struct ChunkUpload {
    pub upload_id: String,
    pub index: u32,
    pub sha256: Vec<u8>,
    pub data: bytes::Bytes,
}

/// An upload as GetUpload shows it.
pub struct UploadState {
    pub upload: Upload,
    pub received: Vec<u32>,
}

fn invalid(message: impl Into<String>) -> MediaError {
    MediaError::InvalidArgument(message.into())
}

fn check_name(field: &str, value: &str) -> Result<()> {
    if value.len() > MAX_NAME_BYTES || value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must be at most {MAX_NAME_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

impl MediaApp {
    fn max_bytes(&self, purpose: UploadPurpose) -> Result<u64> {
        Ok(match purpose {
            UploadPurpose::Attachment => self.limits.max_attachment_bytes,
            UploadPurpose::Avatar => self.limits.max_avatar_bytes,
            UploadPurpose::GuildIcon => self.limits.max_guild_icon_bytes,
            UploadPurpose::Unspecified => {
                return Err(invalid("purpose must be ATTACHMENT, AVATAR or GUILD_ICON"));
            }
        })
    }

    pub async fn start_upload(&self, owner_id: &str, new: NewUpload) -> Result<Upload> {
        check_name("file_name", &new.file_name)?;
        check_name("content_type", &new.content_type)?;
        let purpose = UploadPurpose::try_from(new.purpose).unwrap_or(UploadPurpose::Unspecified);
        let max = self.max_bytes(purpose)?;
        if new.size == 0 || new.size > max {
            return Err(invalid(format!(
                "size must be between 1 and {max} bytes for this purpose"
            )));
        }
        let chunk_size = match new.chunk_size {
            0 => self.limits.upload_chunk_bytes,
            n => u64::from(n),
        };
        if chunk_size > self.limits.max_upload_chunk_bytes {
            return Err(invalid(format!(
                "chunk_size is at most {} bytes",
                self.limits.max_upload_chunk_bytes
            )));
        }
        let count = new.size.div_ceil(chunk_size);
        if u64::from(new.chunk_count) != count {
            return Err(invalid(format!(
                "chunk_count must be ceil(size / chunk_size) = {count}"
            )));
        }
        if count > MAX_CHUNKS {
            return Err(invalid(format!(
                "at most {MAX_CHUNKS} chunks (S3's limit on parts); use larger chunks"
            )));
        }
        if count > 1 && chunk_size < MIN_CHUNK_BYTES {
            return Err(invalid(format!(
                "a file of several chunks needs chunks of at least {MIN_CHUNK_BYTES} bytes"
            )));
        }
        let now = mzchat_platform::db::now_millis();
        let id = uuid::Uuid::now_v7().to_string();
        let mut upload = Upload {
            id: id.clone(),
            owner_id: owner_id.to_owned(),
            file_name: new.file_name,
            declared_type: new.content_type,
            size: new.size as i64,
            chunk_size: chunk_size as i32,
            chunk_count: count as i32,
            purpose: purpose as i32,
            backend_id: String::new(),
            state: OPEN.into(),
            head: None,
            file_id: None,
            state_at: now,
            created_at: now,
            expires_at: now + crate::config::millis(self.settings.upload_expiry),
        };
        // The store's upload first, so no row ever lacks it; dropped again if the row is not
        // written (over quota, or a database error).
        upload.backend_id = self.blobs.begin(&object_key(&id)).await?;
        match self.admit(&upload).await {
            Ok(()) => Ok(upload),
            Err(err) => {
                if let Err(abort) = self.blobs.abort(&object_key(&id), &upload.backend_id).await {
                    tracing::warn!(error = %abort, "cannot drop a refused upload in the store");
                }
                Err(err)
            }
        }
    }

    /// Writes the upload's row if the owner's quota and open uploads allow it.
    async fn admit(&self, upload: &Upload) -> Result<()> {
        let owner_id = upload.owner_id.as_str();
        let txn = self.db.begin().await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            // One user's quota checks happen one at a time.
            txn.execute_raw(sea_orm::Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtext('media-quota:' || $1))",
                [owner_id.into()],
            ))
            .await?;
        }
        let (open, pending) = uploads::unfinished_of(&txn, owner_id).await?;
        if open >= u64::from(self.settings.max_open_uploads) {
            return Err(MediaError::ResourceExhausted(format!(
                "at most {} unfinished uploads at once; complete or abort one",
                self.settings.max_open_uploads
            )));
        }
        let size = upload.size as u64;
        let used = files::used_bytes(&txn, owner_id).await? + pending;
        if used.saturating_add(size) > self.limits.user_quota_bytes {
            return Err(MediaError::ResourceExhausted(format!(
                "this upload would exceed your storage quota ({} of {} bytes used)",
                used, self.limits.user_quota_bytes
            )));
        }
        uploads::insert(&txn, upload).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The caller's upload (another user's is NOT_FOUND, like an unknown one).
    async fn own_upload(&self, owner_id: &str, upload_id: &str) -> Result<Upload> {
        let now = mzchat_platform::db::now_millis();
        uploads::find(&self.db, upload_id)
            .await?
            .filter(|u| u.owner_id == owner_id && u.state != ABORTED)
            .filter(|u| u.state == COMPLETE || u.expires_at > now)
            .ok_or_else(|| MediaError::NotFound("no such upload (it may have expired)".into()))
    }

    pub async fn upload_chunk(&self, owner_id: &str, chunk: ChunkUpload) -> Result<()> {
        let upload = self.own_upload(owner_id, &chunk.upload_id).await?;
        if upload.state != OPEN {
            return Err(MediaError::FailedPrecondition(
                "this upload is complete or being completed".into(),
            ));
        }
        let count = upload.chunk_count as u32;
        if chunk.index >= count {
            return Err(invalid(format!(
                "index must be below chunk_count ({count})"
            )));
        }
        let chunk_size = upload.chunk_size as u64;
        let expected = if chunk.index + 1 == count {
            upload.size as u64 - chunk_size * u64::from(count - 1)
        } else {
            chunk_size
        };
        if chunk.data.len() as u64 != expected {
            return Err(invalid(format!(
                "chunk {} must be {expected} bytes, not {}",
                chunk.index,
                chunk.data.len()
            )));
        }
        if chunk.sha256.len() != 32 || Sha256::digest(&chunk.data)[..] != chunk.sha256[..] {
            return Err(invalid(format!(
                "chunk {} does not match its sha256; nothing was stored, send it again",
                chunk.index
            )));
        }
        let index = chunk.index as i32;
        match uploads::claim_chunk(&self.db, &upload.id, index, &chunk.sha256).await? {
            Claim::Same { stored: true } => return Ok(()),
            Claim::Other => {
                return Err(MediaError::AlreadyExists(format!(
                    "chunk {} is stored already with other bytes",
                    chunk.index
                )));
            }
            // Ours, or a retry of the same bytes whose first attempt has not finished: storing
            // the same part again is harmless.
            Claim::New | Claim::Same { stored: false } => {}
        }
        let key = object_key(&upload.id);
        let head = (chunk.index == 0).then(|| chunk.data.slice(..chunk.data.len().min(HEAD_BYTES)));
        let tag = match self
            .blobs
            .put_part(&key, &upload.backend_id, chunk.index, chunk.data)
            .await
        {
            Ok(tag) => tag,
            Err(err) => {
                uploads::release_chunk(&self.db, &upload.id, index).await?;
                return Err(self.store_failed(&upload, err).await);
            }
        };
        self.metrics.uploaded_bytes.inc_by(expected);
        if let Some(head) = head {
            uploads::set_head(&self.db, &upload.id, &head).await?;
        }
        if !uploads::record_part(&self.db, &upload.id, index, &chunk.sha256, &tag).await? {
            return Err(MediaError::AlreadyExists(format!(
                "chunk {} is stored already with other bytes",
                chunk.index
            )));
        }
        Ok(())
    }

    /// What a failed store call means for the upload: the store lost it (a lifecycle rule, or
    /// the sweep), so it is over; or the store is down, so try again.
    async fn store_failed(&self, upload: &Upload, err: BlobError) -> MediaError {
        if !matches!(err, BlobError::NotFound) {
            return err.into();
        }
        let now = mzchat_platform::db::now_millis();
        for from in [OPEN, COMPLETING] {
            if let Err(db) =
                uploads::transition(&self.db, &upload.id, from, ABORTED, now, None).await
            {
                return db.into();
            }
        }
        MediaError::FailedPrecondition(
            "this upload is no longer in the file store; start it again".into(),
        )
    }

    pub async fn upload_state(&self, owner_id: &str, upload_id: &str) -> Result<UploadState> {
        let upload = self.own_upload(owner_id, upload_id).await?;
        let received = if upload.state == COMPLETE {
            (0..upload.chunk_count as u32).collect()
        } else {
            uploads::stored_chunks(&self.db, &upload.id)
                .await?
                .into_iter()
                .map(|c| c.chunk_index as u32)
                .collect()
        };
        Ok(UploadState { upload, received })
    }

    pub async fn complete_upload(
        &self,
        owner_id: &str,
        upload_id: &str,
        sha256: &[u8],
    ) -> Result<File> {
        let upload = self.own_upload(owner_id, upload_id).await?;
        if upload.state == COMPLETE {
            let file_id = upload.file_id.unwrap_or_default();
            return files::find_live(&self.db, &file_id)
                .await?
                .ok_or_else(|| MediaError::NotFound("the file of this upload was deleted".into()));
        }
        let chunks = uploads::stored_chunks(&self.db, &upload.id).await?;
        if chunks.len() != upload.chunk_count as usize {
            let have: std::collections::HashSet<i32> =
                chunks.iter().map(|c| c.chunk_index).collect();
            let missing: Vec<String> = (0..upload.chunk_count)
                .filter(|i| !have.contains(i))
                .take(10)
                .map(|i| i.to_string())
                .collect();
            return Err(MediaError::FailedPrecondition(format!(
                "{} of {} chunks are stored; missing: {}{}",
                chunks.len(),
                upload.chunk_count,
                missing.join(", "),
                if upload.chunk_count as usize - chunks.len() > missing.len() {
                    ", ..."
                } else {
                    ""
                }
            )));
        }
        let mut composite = Sha256::new();
        for chunk in &chunks {
            composite.update(&chunk.sha256);
        }
        let composite = composite.finalize();
        if composite[..] != *sha256 {
            return Err(invalid(
                "sha256 is not the SHA-256 of the chunk digests in order; the chunks are kept",
            ));
        }
        // Every chunk is stored, so chunk 0's head is in the row (read it again: it may have
        // been written after the first read).
        let head = uploads::find(&self.db, &upload.id)
            .await?
            .and_then(|u| u.head)
            .unwrap_or_default();
        let sniffed = sniff::sniff(&head);
        let purpose = UploadPurpose::try_from(upload.purpose).unwrap_or(UploadPurpose::Unspecified);
        let accepted = match purpose {
            UploadPurpose::Attachment => self.settings.attachment_allowed(&sniffed.content_type),
            _ => sniff::is_profile_image(&sniffed.content_type),
        };
        if !accepted {
            self.abort_upload(owner_id, upload_id).await?;
            return Err(invalid(format!(
                "the file is {}, which this purpose does not accept; the upload is dropped",
                sniffed.content_type
            )));
        }
        let now = mzchat_platform::db::now_millis();
        let stale = Some(now - COMPLETING_STALE_MS);
        if !uploads::transition(&self.db, &upload.id, OPEN, COMPLETING, now, stale).await? {
            return Err(MediaError::Unavailable(
                "this upload is being completed; ask again shortly".into(),
            ));
        }
        let parts: Vec<(u32, String)> = chunks
            .iter()
            .map(|c| (c.chunk_index as u32, c.part_tag.clone().unwrap_or_default()))
            .collect();
        let key = object_key(&upload.id);
        if let Err(err) = self.blobs.complete(&key, &upload.backend_id, &parts).await {
            if !matches!(err, BlobError::NotFound) {
                uploads::transition(&self.db, &upload.id, COMPLETING, OPEN, now, None).await?;
            }
            return Err(self.store_failed(&upload, err).await);
        }
        let file = File {
            file_id: format!("{}.{}", upload.id, sniffed.extension),
            owner_id: upload.owner_id.clone(),
            object_key: key,
            content_type: sniffed.content_type,
            size: upload.size,
            file_name: upload.file_name.clone(),
            purpose: upload.purpose,
            sha256: hex::encode(composite),
            created_at: now,
            deleted_at: None,
            purged: false,
        };
        let txn = self.db.begin().await?;
        files::insert(&txn, &file).await?;
        if !uploads::finish(&txn, &upload.id, &file.file_id, now).await? {
            // The sweep gave up on this upload meanwhile: its bytes go too.
            txn.rollback().await?;
            let _ = self.blobs.delete(&file.object_key).await;
            return Err(MediaError::NotFound("this upload expired".into()));
        }
        txn.commit().await?;
        self.metrics.files_completed.inc();
        Ok(file)
    }

    /// Drops an unfinished upload and its parts; aborting it again is fine.
    pub async fn abort_upload(&self, owner_id: &str, upload_id: &str) -> Result<()> {
        let upload = match self.own_upload(owner_id, upload_id).await {
            Ok(upload) => upload,
            // Already aborted (and not yet swept): nothing more to do.
            Err(MediaError::NotFound(_))
                if uploads::find(&self.db, upload_id)
                    .await?
                    .is_some_and(|u| u.owner_id == owner_id && u.state == ABORTED) =>
            {
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        if upload.state == COMPLETE {
            return Err(MediaError::FailedPrecondition(
                "this upload is a file now; delete the file instead".into(),
            ));
        }
        let now = mzchat_platform::db::now_millis();
        if !uploads::transition(&self.db, &upload.id, OPEN, ABORTED, now, None).await? {
            return Err(MediaError::FailedPrecondition(
                "this upload is being completed".into(),
            ));
        }
        uploads::drop_chunks(&self.db, &upload.id).await?;
        // The sweep aborts it in the store later if this fails.
        if let Err(err) = self
            .blobs
            .abort(&object_key(&upload.id), &upload.backend_id)
            .await
        {
            tracing::warn!(error = %err, upload_id, "cannot drop an aborted upload's parts yet");
        }
        Ok(())
    }
}
