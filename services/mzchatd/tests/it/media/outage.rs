//! The S3 store going away mid-upload: the chunk that cannot be stored fails cleanly
//! (UNAVAILABLE, nothing recorded), and once the store is back the upload resumes from the
//! chunks the server has and completes byte for byte. The outage is a proxy in front of the
//! store that refuses and cuts connections.

use mzchat_client::media::{Source, UploadJob};
use mzchat_proto::media::{
    GetUploadRequest, UploadPurpose, media_service_client::MediaServiceClient,
};
use tokio::{net::TcpListener, sync::watch};

use super::*;

/// A TCP proxy to the S3 store that can be switched off (open connections are cut too).
struct Outage {
    port: u16,
    up: watch::Sender<bool>,
}

impl Outage {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (up, watching) = watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watching = watching.clone();
                if !*watching.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", s3_port())).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watching.wait_for(|up| !up) => {}
                    }
                });
            }
        });
        Self { port, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_survives_the_store_going_down_and_resumes() {
    let outage = Outage::start().await;
    let server = MediaServer::start(Store::S3, &[], Some(outage.port));
    let origin = server.origin().to_owned();
    let alice = server.user("laptop");
    alice.login(&origin, None, "").await.expect("login");
    let data = bytes_of(12 * 1024 * 1024, 11);
    let job = |parallel| UploadJob {
        origin: &origin,
        file_name: "survivor.bin".into(),
        content_type: String::new(),
        purpose: UploadPurpose::Attachment,
        source: Source::Memory(data.clone().into()),
        parallel,
        progress: None,
    };
    // The store goes down once the first chunk is in: the client's retries run out.
    let first_chunk_in = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut interrupted = job(1);
    let upload_id = alice.start_upload(&interrupted).await.expect("declared");
    let (flag, cut) = (first_chunk_in.clone(), outage.up.clone());
    interrupted.progress = Some(std::sync::Arc::new(move |_, _| {
        if !flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
            cut.send_replace(false);
        }
    }));
    let failed = alice
        .upload(interrupted, Some(&upload_id))
        .await
        .expect_err("the store is down");
    assert!(
        failed.to_string().contains("Unavailable") || failed.to_string().contains("unavailable"),
        "{failed}"
    );
    // The process reports itself not ready while its store is down, and ready once it is back.
    let admin = server.home.daemon.as_ref().expect("running").admin_port;
    wait_ready(admin, false).await;

    // What the server recorded is what the store holds: the first chunk only.
    let request = alice
        .authed(
            &origin,
            GetUploadRequest {
                upload_id: upload_id.clone(),
            },
        )
        .await
        .expect("token");
    let received = MediaServiceClient::new(alice.channel(&origin).expect("channel"))
        .get_upload(request)
        .await
        .expect("the upload is kept")
        .into_inner()
        .upload
        .expect("upload")
        .received_chunks;
    assert_eq!(received, [0]);

    outage.set(true);
    wait_ready(admin, true).await;
    let (file, resumed_id) = alice
        .upload(job(2), Some(&upload_id))
        .await
        .expect("resumed");
    assert_eq!(resumed_id, upload_id, "the same upload continued");
    let served = http_get(server.assets_port(), &path_of(&file), &[]).await;
    assert_eq!(served.status, 200);
    assert!(served.body == data, "the resumed upload is the file");
    server.finish().await;
}

async fn wait_ready(admin_port: u16, ready: bool) {
    let start = std::time::Instant::now();
    loop {
        let answer = crate::smoke::reqwest_like_get(admin_port, "/readyz").await;
        if answer.starts_with("HTTP/1.0 200") == ready {
            return;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "readiness never became {ready}: {answer}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
