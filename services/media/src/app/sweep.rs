//! Removes what uploads leave behind: unfinished uploads past their expiry (and their parts in
//! the store), aborted ones, the records of completed ones, and deleted files' bytes.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{MediaApp, Result, object_key};
use crate::store::{
    files,
    uploads::{self, ABORTED, COMPLETE, OPEN},
};

/// A completion running longer than this is taken to have died.
pub(super) const COMPLETING_STALE_MS: i64 = 5 * 60_000;

const BATCH: u64 = 100;

impl MediaApp {
    /// One pass; returns how many uploads and files it cleared.
    pub async fn sweep(&self) -> Result<usize> {
        let now = mzchat_platform::db::now_millis();
        let mut cleared = 0;
        for upload in uploads::expired(&self.db, now, BATCH).await? {
            if upload.state != COMPLETE {
                // OPEN, or COMPLETING only once stale (a completion still running keeps its
                // upload; a dead one's is taken, and a late finish then writes no file).
                let stale = Some(now - COMPLETING_STALE_MS);
                if upload.state != ABORTED
                    && !uploads::transition(&self.db, &upload.id, OPEN, ABORTED, now, stale).await?
                {
                    continue;
                }
                let key = object_key(&upload.id);
                // The parts, and the object a completion may have made before it died.
                let dropped = match self.blobs.abort(&key, &upload.backend_id).await {
                    Ok(()) => self.blobs.delete(&key).await,
                    Err(err) => Err(err),
                };
                if let Err(err) = dropped {
                    tracing::warn!(error = %err, upload_id = %upload.id, "cannot drop an expired upload's bytes yet");
                    continue;
                }
            }
            uploads::remove(&self.db, &upload.id).await?;
            cleared += 1;
        }
        for file in files::unpurged(&self.db, BATCH).await? {
            if self.blobs.delete(&file.object_key).await.is_ok() {
                files::set_purged(&self.db, &file.file_id).await?;
                cleared += 1;
            }
        }
        Ok(cleared)
    }

    /// Sweeps every `every` until `shutdown`.
    pub async fn sweep_forever(&self, every: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(cleared) => tracing::info!(cleared, "media sweep"),
                Err(err) => tracing::warn!(error = %err, "media sweep failed"),
            }
        }
    }
}
