//! `media`: N clients each upload a file of M MiB at once (4 chunks in flight each), then each
//! downloads its file from the assets origin. Prints aggregate MiB/s both ways.

use std::time::Instant;

use mzchat_client::media::{Source, UploadJob};
use mzchat_proto::media::UploadPurpose;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::user;

/// Downloads `url` (plain http, loopback) and returns the body's length.
async fn download(url: &str) -> anyhow::Result<u64> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not an http URL: {url}"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut head = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut body = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if body == 0 && !head.ends_with(b"\r\n\r\n") {
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                anyhow::ensure!(
                    head.starts_with(b"HTTP/1.1 200"),
                    "download of {url} failed"
                );
                body = (head.len() - end - 4) as u64;
                head.truncate(end + 4);
            }
        } else {
            body += n as u64;
        }
    }
    Ok(body)
}

pub async fn media_scenario(
    origin: &str,
    dir: &std::path::Path,
    clients: usize,
    mib: usize,
) -> anyhow::Result<()> {
    let mut users = Vec::new();
    for _ in 0..clients {
        users.push(user(origin, dir).await?);
    }
    let data = bytes::Bytes::from(
        (0..mib * 1024 * 1024)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let started = Instant::now();
    let uploads = users.iter().enumerate().map(|(n, client)| {
        let job = UploadJob {
            origin,
            file_name: format!("load-{n}.bin"),
            content_type: String::new(),
            purpose: UploadPurpose::Attachment,
            source: Source::Memory(data.clone()),
            parallel: 4,
            progress: None,
        };
        async move { anyhow::Ok(client.upload(job, None).await?.0) }
    });
    let files = futures::future::try_join_all(uploads).await?;
    let up = started.elapsed();
    let started = Instant::now();
    let sizes = futures::future::try_join_all(files.iter().map(|f| download(&f.url))).await?;
    let down = started.elapsed();
    anyhow::ensure!(
        sizes.iter().all(|s| *s == data.len() as u64),
        "a download came back short: {sizes:?}"
    );
    let total = (clients * mib) as f64;
    crate::results::throughput("upload MiB/s", total / up.as_secs_f64());
    crate::results::field(
        "download_mib_per_s",
        serde_json::json!(total / down.as_secs_f64()),
    );
    println!(
        "media: {clients} client(s) x {mib} MiB: upload {:.1} MiB/s ({up:.2?}), download {:.1} MiB/s ({down:.2?})",
        total / up.as_secs_f64(),
        total / down.as_secs_f64()
    );
    Ok(())
}
