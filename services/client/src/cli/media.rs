//! `mzchat upload`: a file in parallel chunks with a progress line on stderr, resuming an
//! interrupted upload of the same file.

use std::{
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
    time::Instant,
};

use mzchat_client::{Client, KeyStore};
use mzchat_proto::media::{File, UploadPurpose};

use super::{CliResult, open};

/// Chunks in flight at once.
const PARALLEL: usize = 4;

/// Uploads `path` as an attachment and returns the file, drawing progress on stderr.
pub async fn upload_file(
    client: &Client,
    origin: &str,
    path: &Path,
) -> Result<File, Box<dyn std::error::Error>> {
    if let Some(id) = client.pending_upload(origin, path) {
        eprintln!("resuming upload {id}");
    }
    let started = Instant::now();
    let last = Arc::new(Mutex::new(Instant::now()));
    let progress = Arc::new(move |sent: u64, total: u64| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if sent < total && last.elapsed().as_millis() < 100 {
            return;
        }
        *last = Instant::now();
        let width = 30;
        let done = (sent * width / total.max(1)) as usize;
        let rate = sent as f64 / 1_048_576.0 / started.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r[{}{}] {:>5.1}% {:.1}/{:.1} MiB {rate:.1} MiB/s",
            "#".repeat(done),
            " ".repeat(width as usize - done),
            sent as f64 * 100.0 / total.max(1) as f64,
            sent as f64 / 1_048_576.0,
            total as f64 / 1_048_576.0,
        );
        let _ = std::io::stderr().flush();
    });
    let file = client
        .upload_path(
            origin,
            path,
            UploadPurpose::Attachment,
            PARALLEL,
            Some(progress),
        )
        .await;
    eprintln!();
    Ok(file?)
}

pub async fn upload(store: KeyStore, origin: &str, path: &Path) -> CliResult {
    let client = open(store)?;
    let file = upload_file(&client, origin, path).await?;
    println!("{}\t{}\t{}", file.file_id, file.content_type, file.url);
    Ok(())
}
