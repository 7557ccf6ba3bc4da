//! Connecting to NATS given several servers.

use std::time::Duration;

use mzchat_platform::bus::{Bus, NatsBus};

/// A cluster's URLs, one of them down: the bus connects to the one that answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_connects_through_any_server_of_the_list() {
    let live =
        std::env::var("MZCHAT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    // Port 1 on loopback refuses connections.
    let urls = format!("nats://127.0.0.1:1, {live}");
    let bus = NatsBus::connect(&urls, "listed", 1).await.expect("nats");
    // The connection is made in the background, trying the servers in turn.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(err) = bus.check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not connected within 30 s: {err}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
