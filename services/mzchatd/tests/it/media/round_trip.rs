//! A 50 MiB upload in parallel chunks comes back byte for byte from the assets origin, with
//! the headers a browser needs to cache it and not run it, and exact byte ranges.

use std::time::Instant;

use mzchat_proto::media::UploadPurpose;
use sha2::{Digest, Sha256};

use super::*;

async fn a_large_upload_round_trips_with_ranges(store: Store) {
    let server = MediaServer::start(store, &[], None);
    let origin = server.origin().to_owned();
    let alice = server.user("laptop");
    alice.login(&origin, None, "").await.expect("login");
    let data = bytes_of(50 * 1024 * 1024, 7);
    let rss_before = server.home.daemon.as_ref().expect("running").peak_rss_kib();
    let started = Instant::now();
    let file = upload(
        &alice,
        &origin,
        "big.bin",
        UploadPurpose::Attachment,
        data.clone(),
    )
    .await
    .expect("upload");
    let upload_time = started.elapsed();
    let rss_after = server.home.daemon.as_ref().expect("running").peak_rss_kib();
    assert_eq!(file.size, data.len() as u64);
    assert_eq!(file.content_type, "application/octet-stream");
    assert!(file.file_id.ends_with(".bin"), "{}", file.file_id);
    assert_eq!(
        file.url,
        format!("http://127.0.0.1:{}/{}", server.assets_port(), file.file_id)
    );

    let port = server.assets_port();
    let started = Instant::now();
    let whole = http_get(port, &path_of(&file), &[]).await;
    let download_time = started.elapsed();
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.len(), data.len());
    assert!(
        Sha256::digest(&whole.body) == Sha256::digest(&data),
        "the bytes differ"
    );
    let header = |name: &str| whole.headers.get(name).cloned().unwrap_or_default();
    assert_eq!(header("content-type"), "application/octet-stream");
    assert!(header("content-disposition").starts_with("attachment;"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-security-policy").contains("sandbox"));
    assert!(header("cache-control").contains("immutable"));
    assert_eq!(header("accept-ranges"), "bytes");
    let etag = header("etag");
    assert!(etag.len() > 60, "a strong hash ETag: {etag}");
    eprintln!(
        "{store:?}: 50 MiB up in {upload_time:.2?} ({:.0} MiB/s), down in {download_time:.2?} ({:.0} MiB/s); server peak RSS {} -> {} MiB",
        50.0 / upload_time.as_secs_f64(),
        50.0 / download_time.as_secs_f64(),
        rss_before / 1024,
        rss_after / 1024
    );

    // Neither the upload nor the download holds the file in memory: the server grows by less
    // than the file's size (chunks in flight, not the whole).
    let rss_after_download = server.home.daemon.as_ref().expect("running").peak_rss_kib();
    assert!(
        rss_after_download.saturating_sub(rss_before) < 50 * 1024,
        "peak RSS grew from {rss_before} to {rss_after_download} KiB for a 50 MiB file"
    );

    let cached = http_get(port, &path_of(&file), &[("If-None-Match", &etag)]).await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.headers.get("etag"), Some(&etag));
    let head = http_request(port, "HEAD", &path_of(&file), &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.headers
            .get("content-length")
            .cloned()
            .unwrap_or_default(),
        data.len().to_string()
    );

    for (range, expected) in [
        ("bytes=0-0", 0..1),
        ("bytes=1000-1999", 1000..2000),
        // Across the first chunk boundary (5 MiB).
        ("bytes=5242870-5242889", 5_242_870..5_242_890),
        ("bytes=-10", data.len() - 10..data.len()),
        ("bytes=52428700-", 52_428_700..data.len()),
    ] {
        let part = http_get(port, &path_of(&file), &[("Range", range)]).await;
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(part.body, data[expected.clone()], "{range}");
        assert_eq!(
            part.headers
                .get("content-range")
                .cloned()
                .unwrap_or_default(),
            format!(
                "bytes {}-{}/{}",
                expected.start,
                expected.end - 1,
                data.len()
            ),
            "{range}"
        );
    }
    let beyond = http_get(port, &path_of(&file), &[("Range", "bytes=60000000-")]).await;
    assert_eq!(beyond.status, 416);
    assert_eq!(
        beyond
            .headers
            .get("content-range")
            .cloned()
            .unwrap_or_default(),
        format!("bytes */{}", data.len())
    );
    let unknown = http_get(port, "/0190a3e4-0000-7000-8000-000000000000.bin", &[]).await;
    assert_eq!(unknown.status, 404);
    server.finish().await;
}

both_stores!(a_large_upload_round_trips_with_ranges);

/// With --media-redirect, the assets origin answers with a presigned URL, and the store serves
/// the bytes with the same type, disposition and caching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_can_redirect_to_the_store() {
    let server = MediaServer::start(Store::S3, &["--media-redirect"], None);
    let origin = server.origin().to_owned();
    let alice = server.user("laptop");
    alice.login(&origin, None, "").await.expect("login");
    let page = b"<html><script>alert(1)</script></html>".to_vec();
    let file = upload(
        &alice,
        &origin,
        "page.html",
        UploadPurpose::Attachment,
        page.clone(),
    )
    .await
    .expect("upload");
    let redirect = http_get(server.assets_port(), &path_of(&file), &[]).await;
    assert_eq!(redirect.status, 302);
    let location = redirect
        .headers
        .get("location")
        .cloned()
        .unwrap_or_default();
    let path = location
        .strip_prefix(&format!("http://127.0.0.1:{}", s3_port()))
        .unwrap_or_else(|| panic!("a URL on the store: {location}"));
    let served = http_get(s3_port(), path, &[]).await;
    assert_eq!(
        served.status,
        200,
        "{}",
        String::from_utf8_lossy(&served.body)
    );
    assert_eq!(served.body, page);
    assert_eq!(
        served.headers.get("content-type").map(String::as_str),
        Some("text/html")
    );
    assert!(
        served
            .headers
            .get("content-disposition")
            .is_some_and(|d| d.starts_with("attachment;")),
        "{:?}",
        served.headers
    );
    server.finish().await;
}
