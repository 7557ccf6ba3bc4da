//! The media service on a real `mzchatd all` (PROTOCOL.md section 11), over both storage
//! pairings: SQLite with the disk store, and PostgreSQL + NATS with the S3-compatible store
//! (SeaweedFS on 127.0.0.1:8333, a bucket per test).

mod attachments;
mod checks;
mod outage;
mod round_trip;

use std::collections::HashMap;

use mzchat_client::{
    Client,
    media::{Source, UploadJob},
};
use mzchat_proto::media::{File, UploadPurpose};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::federation::{Backend, Homeserver, user};

pub fn s3_port() -> u16 {
    std::env::var("MZCHAT_TEST_S3_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8333)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// SQLite, the in-process bus, files on disk.
    Disk,
    /// PostgreSQL, NATS, an S3 bucket.
    S3,
}

pub struct MediaServer {
    pub home: Homeserver,
    pub bucket: Option<String>,
}

impl MediaServer {
    /// A homeserver; `s3_port` overrides where the S3 store is reached (a proxy in front of it).
    pub fn start(store: Store, extra: &[&str], s3_port: Option<u16>) -> Self {
        // One bucket for all tests (object keys are unique): a bucket per test would use up
        // the store's volumes, as SeaweedFS gives each bucket volumes of its own.
        let bucket = (store == Store::S3).then(|| {
            std::env::var("MZCHAT_TEST_S3_BUCKET").unwrap_or_else(|_| "mzchat-tests".into())
        });
        let endpoint = format!("http://127.0.0.1:{}", s3_port.unwrap_or_else(self::s3_port));
        let mut flags: Vec<&str> = extra.to_vec();
        if let Some(bucket) = &bucket {
            flags.extend([
                "--media-store",
                "s3",
                "--s3-endpoint",
                &endpoint,
                "--s3-bucket",
                bucket,
                "--s3-access-key-id",
                "test",
                "--s3-secret-access-key",
                "test",
                "--s3-path-style",
            ]);
        }
        let backend = match store {
            Store::Disk => Backend::Embedded,
            Store::S3 => Backend::PostgresNats,
        };
        let home = Homeserver::start(backend, &flags);
        Self { home, bucket }
    }

    pub fn origin(&self) -> &str {
        &self.home.origin
    }

    pub fn assets_port(&self) -> u16 {
        self.home.daemon.as_ref().expect("running").assets_port
    }

    pub fn user(&self, device: &str) -> Client {
        user(&self.home.origin, device)
    }

    pub async fn finish(self) {
        let data = self.home.data.clone();
        self.home.remove().await;
        std::fs::remove_dir_all(data).ok();
    }
}

/// `len` bytes that do not repeat in any useful way (a hash chain), so a misplaced chunk shows.
pub fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest([seed]);
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    out.truncate(len);
    out
}

pub async fn upload(
    client: &Client,
    origin: &str,
    name: &str,
    purpose: UploadPurpose,
    data: Vec<u8>,
) -> Result<File, mzchat_client::ClientError> {
    let job = UploadJob {
        origin,
        file_name: name.into(),
        content_type: "application/octet-stream".into(),
        purpose,
        source: Source::Memory(data.into()),
        parallel: 4,
        progress: None,
    };
    Ok(client.upload(job, None).await?.0)
}

/// One HTTP/1.1 exchange: status, headers (lower-case names), body.
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

pub async fn http_get(port: u16, path: &str, headers: &[(&str, &str)]) -> Reply {
    http_request(port, "GET", path, headers).await
}

pub async fn http_request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// Decodes a chunked transfer encoding.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
}

/// The path of a file on the assets origin.
pub fn path_of(file: &File) -> String {
    format!("/{}", file.file_id)
}

macro_rules! both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn disk() {
                super::$name(super::super::Store::Disk).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                super::$name(super::super::Store::S3).await
            }
        }
    };
}
use both_stores;
