//! Files: metadata for clients and for the other services, and deletion by the owner.

use super::{MediaApp, MediaError, Result};
use crate::store::files::{self, File};

impl MediaApp {
    pub async fn file(&self, file_id: &str) -> Result<File> {
        files::find_live(&self.db, file_id)
            .await?
            .ok_or_else(|| MediaError::NotFound("no such file on this server".into()))
    }

    /// Deletes one of the caller's files: its URL stops serving at once, and its bytes leave
    /// the store now or, if the store is down, at the next sweep.
    pub async fn delete_file(&self, owner_id: &str, file_id: &str) -> Result<()> {
        let file = self.file(file_id).await?;
        if file.owner_id != owner_id {
            return Err(MediaError::PermissionDenied(
                "only the uploader may delete a file".into(),
            ));
        }
        let now = mzchat_platform::db::now_millis();
        if !files::mark_deleted(&self.db, file_id, owner_id, now).await? {
            return Err(MediaError::NotFound("no such file on this server".into()));
        }
        match self.blobs.delete(&file.object_key).await {
            Ok(()) => files::set_purged(&self.db, file_id).await?,
            Err(err) => {
                tracing::warn!(error = %err, file_id, "deleted file's bytes stay until the next sweep")
            }
        }
        Ok(())
    }
}
