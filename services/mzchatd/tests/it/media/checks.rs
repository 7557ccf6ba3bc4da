//! What the media service checks: each chunk's hash on arrival (any order, retries), the
//! composite hash at completion, the content type from the bytes, sizes and quotas, the
//! owner's deletion, and the sweep of abandoned uploads.

use std::time::{Duration, Instant};

use mzchat_proto::media::{
    AbortUploadRequest, CompleteUploadRequest, DeleteFileRequest, GetFileRequest, GetUploadRequest,
    StartUploadRequest, UploadChunkRequest, UploadPurpose,
    media_service_client::MediaServiceClient,
};
use sha2::{Digest, Sha256};
use tonic::Code;

use super::*;

const MIB: usize = 1024 * 1024;

struct Api<'a> {
    client: &'a Client,
    origin: &'a str,
}

impl Api<'_> {
    fn raw(&self) -> MediaServiceClient<tonic::transport::Channel> {
        MediaServiceClient::new(self.client.channel(self.origin).expect("channel"))
    }

    async fn start(&self, size: usize, purpose: UploadPurpose) -> Result<String, tonic::Status> {
        let request = StartUploadRequest {
            file_name: "test.bin".into(),
            content_type: "application/octet-stream".into(),
            size: size as u64,
            chunk_size: (5 * MIB) as u32,
            chunk_count: size.div_ceil(5 * MIB) as u32,
            purpose: purpose as i32,
        };
        let request = self
            .client
            .authed(self.origin, request)
            .await
            .expect("token");
        Ok(self
            .raw()
            .start_upload(request)
            .await?
            .into_inner()
            .upload_id)
    }

    async fn chunk(
        &self,
        id: &str,
        index: u32,
        sha256: &[u8],
        data: &[u8],
    ) -> Result<(), tonic::Status> {
        let request = UploadChunkRequest {
            upload_id: id.into(),
            index,
            sha256: sha256.to_vec(),
            data: data.to_vec(),
        };
        let request = self
            .client
            .authed(self.origin, request)
            .await
            .expect("token");
        self.raw().upload_chunk(request).await.map(|_| ())
    }

    async fn complete(&self, id: &str, sha256: Vec<u8>) -> Result<File, tonic::Status> {
        let request = CompleteUploadRequest {
            upload_id: id.into(),
            sha256,
        };
        let request = self
            .client
            .authed(self.origin, request)
            .await
            .expect("token");
        Ok(self
            .raw()
            .complete_upload(request)
            .await?
            .into_inner()
            .file
            .expect("file"))
    }

    async fn received(&self, id: &str) -> Result<Vec<u32>, tonic::Status> {
        let request = GetUploadRequest {
            upload_id: id.into(),
        };
        let request = self
            .client
            .authed(self.origin, request)
            .await
            .expect("token");
        Ok(self
            .raw()
            .get_upload(request)
            .await?
            .into_inner()
            .upload
            .expect("upload")
            .received_chunks)
    }
}

fn digest(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

async fn chunks_are_checked_and_completion_verifies_the_whole(store: Store) {
    let server = MediaServer::start(store, &[], None);
    let origin = server.origin().to_owned();
    let alice = server.user("laptop");
    alice.login(&origin, None, "").await.expect("login");
    let api = Api {
        client: &alice,
        origin: &origin,
    };
    let data = bytes_of(11 * MIB, 3);
    let chunks: Vec<&[u8]> = data.chunks(5 * MIB).collect();
    let digests: Vec<Vec<u8>> = chunks.iter().map(|c| digest(c)).collect();
    let id = api
        .start(data.len(), UploadPurpose::Attachment)
        .await
        .expect("start");

    // Out of order; a chunk corrupted on the way is refused and nothing is stored.
    api.chunk(&id, 2, &digests[2], chunks[2])
        .await
        .expect("last chunk first");
    let mut corrupt = chunks[1].to_vec();
    corrupt[12345] ^= 0x40;
    let status = api
        .chunk(&id, 1, &digests[1], &corrupt)
        .await
        .expect_err("corrupt");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    api.chunk(&id, 0, &digests[0], chunks[0])
        .await
        .expect("first chunk");
    assert_eq!(api.received(&id).await.expect("state"), [0, 2]);
    let status = api
        .complete(&id, digest(&digests.concat()))
        .await
        .expect_err("missing");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("missing: 1"), "{status:?}");
    api.chunk(&id, 1, &digests[1], chunks[1])
        .await
        .expect("the retried chunk");
    // The same chunk again is a harmless retry; other bytes for a stored index are not.
    api.chunk(&id, 1, &digests[1], chunks[1])
        .await
        .expect("a duplicate");
    let other = bytes_of(5 * MIB, 9);
    let status = api
        .chunk(&id, 1, &digest(&other), &other)
        .await
        .expect_err("other bytes");
    assert_eq!(status.code(), Code::AlreadyExists);
    let status = api
        .chunk(&id, 3, &digests[2], chunks[2])
        .await
        .expect_err("index");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = api
        .chunk(&id, 2, &digests[0], chunks[0])
        .await
        .expect_err("length");
    assert_eq!(status.code(), Code::InvalidArgument);

    let mut wrong = digests.clone();
    wrong.swap(0, 1);
    let status = api
        .complete(&id, digest(&wrong.concat()))
        .await
        .expect_err("order");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let file = api
        .complete(&id, digest(&digests.concat()))
        .await
        .expect("complete");
    let again = api
        .complete(&id, digest(&digests.concat()))
        .await
        .expect("idempotent");
    assert_eq!(file.file_id, again.file_id);
    let served = http_get(server.assets_port(), &path_of(&file), &[]).await;
    assert!(served.body == data, "the file is the chunks in order");

    // Another user sees neither the upload nor may delete the file.
    let mallory = server.user("phone");
    mallory.login(&origin, None, "").await.expect("login");
    let other_api = Api {
        client: &mallory,
        origin: &origin,
    };
    let status = other_api.received(&id).await.expect_err("not theirs");
    assert_eq!(status.code(), Code::NotFound);
    let request = mallory
        .authed(
            &origin,
            DeleteFileRequest {
                file_id: file.file_id.clone(),
            },
        )
        .await
        .expect("token");
    let status = other_api
        .raw()
        .delete_file(request)
        .await
        .expect_err("not theirs");
    assert_eq!(status.code(), Code::PermissionDenied);
    let request = alice
        .authed(
            &origin,
            DeleteFileRequest {
                file_id: file.file_id.clone(),
            },
        )
        .await
        .expect("token");
    api.raw()
        .delete_file(request)
        .await
        .expect("the owner deletes");
    assert_eq!(
        http_get(server.assets_port(), &path_of(&file), &[])
            .await
            .status,
        404
    );
    let request = alice
        .authed(
            &origin,
            GetFileRequest {
                file_id: file.file_id.clone(),
            },
        )
        .await
        .expect("token");
    let status = api.raw().get_file(request).await.expect_err("deleted");
    assert_eq!(status.code(), Code::NotFound);
    server.finish().await;
}

async fn types_are_sniffed_and_markup_served_as_a_download(store: Store) {
    let server = MediaServer::start(store, &[], None);
    let origin = server.origin().to_owned();
    let alice = server.user("laptop");
    alice.login(&origin, None, "").await.expect("login");
    let page = b"<!DOCTYPE html><html><script>steal(document.cookie)</script></html>".to_vec();

    // An HTML page named .png is no avatar, and the upload is dropped.
    let refused = upload(
        &alice,
        &origin,
        "cat.png",
        UploadPurpose::Avatar,
        page.clone(),
    )
    .await
    .expect_err("html as an avatar");
    assert!(refused.to_string().contains("text/html"), "{refused}");
    // As an attachment it is kept for what it is, and served so no browser runs it.
    let file = upload(&alice, &origin, "cat.png", UploadPurpose::Attachment, page)
        .await
        .expect("html attachment");
    assert_eq!(file.content_type, "text/html");
    assert!(file.file_id.ends_with(".html"), "{}", file.file_id);
    let served = http_get(server.assets_port(), &path_of(&file), &[]).await;
    let header = |name: &str| served.headers.get(name).cloned().unwrap_or_default();
    assert_eq!(header("content-type"), "text/html");
    assert!(
        header("content-disposition").starts_with("attachment;"),
        "{:?}",
        served.headers
    );
    assert!(header("content-disposition").contains("cat.png"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("content-security-policy").contains("sandbox"));

    // A real PNG is an avatar, served inline.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    png.extend(bytes_of(100, 1));
    let avatar = upload(&alice, &origin, "me.jpg", UploadPurpose::Avatar, png)
        .await
        .expect("png avatar");
    assert_eq!(avatar.content_type, "image/png");
    assert!(avatar.file_id.ends_with(".png"));
    let served = http_get(server.assets_port(), &path_of(&avatar), &[]).await;
    assert_eq!(
        served.headers.get("content-type").map(String::as_str),
        Some("image/png")
    );
    assert!(served.headers["content-disposition"].starts_with("inline"));
    server.finish().await;
}

async fn sizes_and_quotas_are_enforced(store: Store) {
    let quota = (12 * MIB).to_string();
    let server = MediaServer::start(store, &["--user-quota-bytes", &quota], None);
    let origin = server.origin().to_owned();
    let alice = server.user("laptop");
    alice.login(&origin, None, "").await.expect("login");
    let api = Api {
        client: &alice,
        origin: &origin,
    };
    let status = api
        .start(9 * MIB, UploadPurpose::Avatar)
        .await
        .expect_err("avatars are at most 8 MiB");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = api
        .start(10, UploadPurpose::Unspecified)
        .await
        .expect_err("no purpose");
    assert_eq!(status.code(), Code::InvalidArgument);
    let first = api
        .start(10 * MIB, UploadPurpose::Attachment)
        .await
        .expect("10 MiB");
    let status = api
        .start(3 * MIB, UploadPurpose::Attachment)
        .await
        .expect_err("over quota with the unfinished upload");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("quota"), "{status:?}");
    // Aborting frees it.
    let request = alice
        .authed(
            &origin,
            AbortUploadRequest {
                upload_id: first.clone(),
            },
        )
        .await
        .expect("token");
    api.raw().abort_upload(request).await.expect("abort");
    let request = alice
        .authed(
            &origin,
            AbortUploadRequest {
                upload_id: first.clone(),
            },
        )
        .await
        .expect("token");
    api.raw().abort_upload(request).await.expect("abort again");
    assert_eq!(
        api.received(&first).await.expect_err("aborted").code(),
        Code::NotFound
    );
    api.start(3 * MIB, UploadPurpose::Attachment)
        .await
        .expect("room again");
    server.finish().await;
}

async fn abandoned_uploads_are_swept(store: Store) {
    let server = MediaServer::start(store, &["--media-upload-expiry-secs", "2"], None);
    let origin = server.origin().to_owned();
    let alice = server.user("laptop");
    alice.login(&origin, None, "").await.expect("login");
    let api = Api {
        client: &alice,
        origin: &origin,
    };
    let data = bytes_of(6 * MIB, 5);
    let id = api
        .start(data.len(), UploadPurpose::Attachment)
        .await
        .expect("start");
    api.chunk(&id, 0, &digest(&data[..5 * MIB]), &data[..5 * MIB])
        .await
        .expect("one chunk, then silence");
    let in_store = || async {
        match &server.bucket {
            Some(bucket) => {
                let listing = http_get(s3_port(), &format!("/{bucket}?uploads"), &[]).await;
                String::from_utf8_lossy(&listing.body).contains(&id)
            }
            None => server.home.data.join("media/parts").join(&id).exists(),
        }
    };
    assert!(
        in_store().await,
        "the part is in the store while the upload lives"
    );
    let start = Instant::now();
    while api.received(&id).await.is_ok() || in_store().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the abandoned upload was never swept"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.finish().await;
}

both_stores!(chunks_are_checked_and_completion_verifies_the_whole);
both_stores!(types_are_sniffed_and_markup_served_as_a_download);
both_stores!(sizes_and_quotas_are_enforced);
both_stores!(abandoned_uploads_are_swept);
