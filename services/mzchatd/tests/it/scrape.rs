//! A real Prometheus scrapes a homeserver's admin port (issue 8): after some activity, every
//! series the dashboards and alerts use exists, read back through Prometheus's own API.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mzchat_proto::media::UploadPurpose;

use crate::{
    daemon::{Daemon, free_port, unique},
    federation::{guild_with_invite, mention, user},
    push::{distributor, distributor_server, register},
};

/// The series this test expects, as Prometheus names them (counters end in `_total`).
pub const EXPECTED: [&str; 18] = [
    "mzchat_grpc_server_handled_total",
    "mzchat_grpc_server_handling_seconds_bucket",
    "mzchat_outbox_published_total",
    "mzchat_outbox_depth",
    "mzchat_outbox_oldest_age_seconds",
    "mzchat_bus_consumed_total",
    "mzchat_bus_published_total",
    "mzchat_bus_consumer_pending",
    "mzchat_federation_jobs_total",
    "mzchat_federation_destinations",
    "mzchat_push_delivery_attempts_total",
    "mzchat_push_delivery_seconds_bucket",
    "mzchat_media_uploaded_bytes_total",
    "mzchat_media_files_completed_total",
    "mzchat_media_served_bytes_total",
    "mzchat_event_streams_open",
    "mzchat_presence_online_users",
    "up",
];

struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(dir: &std::path::Path, target_port: u16) -> Self {
        let port = free_port();
        std::fs::create_dir_all(dir).expect("dir");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: mzchatd\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .expect("config");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (deploy/dev/services.sh installs it)");
        Self { child, port }
    }

    async fn names(&self) -> String {
        crate::smoke::reqwest_like_get(self.port, "/api/v1/label/__name__/values").await
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_series_the_dashboards_use() {
    let data = std::env::temp_dir().join(unique("mzchatd-scrape-"));
    let daemon = Daemon::start(&data, &["--push-allow-endpoint-hosts", "127.0.0.1"]);
    let origin = daemon.origin.clone();
    let prometheus = Prometheus::start(&data.join("prometheus"), daemon.admin_port);

    // Activity behind each series: calls, events through the outbox and the bus, a push, an
    // upload, and a federation job (a visitor whose home cannot be reached).
    let alice = user(&origin, "laptop");
    let (guild_id, channel_id, link) = guild_with_invite(&alice, &origin).await;
    let bob = user(&origin, "phone");
    bob.join_invite(&link, None).await.expect("bob joins");
    let (url, mut pushes) = distributor_server().await;
    register(&bob, &origin, distributor("phone", &url))
        .await
        .expect("bob's distributor");
    mention(
        &alice,
        &origin,
        &guild_id,
        &channel_id,
        bob.identity().user_id(),
        "hi",
    )
    .await;
    tokio::time::timeout(Duration::from_secs(20), pushes.recv())
        .await
        .expect("the push arrives");
    crate::media::upload(
        &alice,
        &origin,
        "a.txt",
        UploadPurpose::Attachment,
        b"hello".to_vec(),
    )
    .await
    .expect("upload");
    let visitor = user("http://unreachable.invalid", "laptop");
    visitor.login(&origin, None, "").await.expect("a visitor");

    let start = Instant::now();
    let missing = loop {
        let names = prometheus.names().await;
        let missing: Vec<&str> = EXPECTED
            .iter()
            .filter(|name| !names.contains(&format!("\"{name}\"")))
            .copied()
            .collect();
        if missing.is_empty() || start.elapsed() > Duration::from_secs(40) {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        missing.is_empty(),
        "series Prometheus never saw: {missing:?}"
    );
    drop(prometheus);
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}
