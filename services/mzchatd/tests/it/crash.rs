//! Killing `mzchatd all` with SIGKILL in the middle of a stream of writes loses no event: every
//! acknowledged write's event is in the outbox (same transaction) and is published after restart.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use mzchat_client::{Client, KeyStore, LocalIdentity};
use mzchat_platform::bus::{Bus, ConsumerSpec, NatsBus, streams};
use mzchat_proto::identity::{
    ProfileUpdated, UpdateProfileRequest, identity_service_client::IdentityServiceClient,
};
use prost::Message;

use crate::daemon::{Daemon, Nats, free_port, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_queued_event_is_lost_when_mzchatd_is_killed_mid_stream() {
    let nats = Nats::start();
    let prefix = unique("crash");
    let data = std::env::temp_dir().join(unique("mzchatd-crash-"));
    let port = free_port();
    let url = nats.url();
    let flags = ["--nats-url", url.as_str(), "--bus-prefix", prefix.as_str()];
    let mut daemon = Daemon::start_on(port, &data, &flags);

    let bus = NatsBus::connect(&url, &prefix, 1).await.expect("nats");
    let mut events = bus
        .consume(ConsumerSpec {
            stream: streams::IDENTITY,
            durable: "crash-test".into(),
            filter: "identity.v1.profile.updated".into(),
            max_deliver: 10,
            ack_wait: Duration::from_secs(30),
            ordered: true,
        })
        .await
        .expect("consume");

    let store = KeyStore::new(data.join("client"));
    store
        .save_identity(&LocalIdentity::generate(&daemon.origin, "laptop").expect("keys"))
        .expect("save");
    let client = Arc::new(Client::open(store).expect("client"));
    client.login(&daemon.origin, None, "").await.expect("login");

    // A steady stream of writes; remember which ones the server acknowledged.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let writer = tokio::spawn({
        let (client, acked, origin) = (client.clone(), acked.clone(), daemon.origin.clone());
        async move {
            let mut api = IdentityServiceClient::new(client.channel(&origin).expect("channel"));
            for i in 0..10_000 {
                let name = format!("write {i}");
                let request = client
                    .authed(
                        &origin,
                        UpdateProfileRequest {
                            display_name: Some(name.clone()),
                            ..Default::default()
                        },
                    )
                    .await
                    .expect("token");
                match api.update_profile(request).await {
                    Ok(_) => acked.lock().expect("lock").push(name),
                    Err(_) => return,
                }
            }
        }
    });
    while acked.lock().expect("lock").len() < 40 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    daemon.kill();
    writer.await.expect("writer");
    let acked = acked.lock().expect("lock").clone();

    let _restarted = Daemon::start_on(port, &data, &flags);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut order: Vec<usize> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !acked.iter().all(|name| seen.contains_key(name)) {
        let delivery = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| {
                let missing: Vec<_> = acked.iter().filter(|n| !seen.contains_key(*n)).collect();
                panic!("events of acknowledged writes never arrived: {missing:?}")
            })
            .expect("delivery");
        let event = ProfileUpdated::decode(delivery.payload.clone()).expect("payload");
        let name = event.profile.expect("profile").display_name;
        if let Some(i) = name.strip_prefix("write ").and_then(|i| i.parse().ok()) {
            order.push(i);
        }
        *seen.entry(name).or_default() += 1;
        delivery.ack().await.expect("ack");
    }
    while let Ok(Some(delivery)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await
    {
        let event = ProfileUpdated::decode(delivery.payload.clone()).expect("payload");
        *seen
            .entry(event.profile.expect("profile").display_name)
            .or_default() += 1;
        delivery.ack().await.ok();
    }
    for name in &acked {
        assert_eq!(seen[name], 1, "{name} delivered exactly once");
    }
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "events in write order: {order:?}"
    );
    println!(
        "{} acknowledged writes before the kill, all delivered once",
        acked.len()
    );
    drop(events);
    std::fs::remove_dir_all(data).ok();
}
