//! Events survive the bus being down: writes keep succeeding, their events wait in the outbox,
//! and every one reaches a consumer exactly once after NATS comes back.

use std::{
    collections::HashMap,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use mzchat_platform::bus::{ConsumerSpec, streams};
use mzchat_proto::identity::{
    ProfileUpdated, UpdateProfileRequest, identity_service_client::IdentityServiceClient,
};
use prost::Message;

use crate::harness::{Backend, Shared, TestServer, unique};

fn nats_binary() -> String {
    for candidate in [
        "nats-server",
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
    ] {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok()
        {
            return candidate.to_owned();
        }
    }
    panic!("nats-server not found: run `make services-up` (it installs one)");
}

fn start_nats(port: u16, store: &Path) -> Child {
    let mut child = Command::new(nats_binary())
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait().ok();
    panic!("nats-server did not listen on {port}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_while_nats_is_down_arrive_exactly_once_after_it_returns() {
    let port = free_port();
    let store = std::env::temp_dir().join(unique("mzchat-nats-"));
    let mut nats = start_nats(port, &store);
    let url = format!("nats://127.0.0.1:{port}");
    let shared = Shared::with_nats(Backend::PostgresNats, &url).await;
    let server = TestServer::start_with(shared, |_| {}).await;
    let mut events = server
        .shared
        .bus
        .consume(ConsumerSpec {
            stream: streams::IDENTITY,
            durable: "test-profile-consumer".into(),
            filter: "identity.v1.profile.updated".into(),
            max_deliver: 10,
            // NATS killed with -9 may forget the last ack; this ordered consumer then waits
            // ack_wait before that message comes again, and everything behind it with it.
            ack_wait: Duration::from_secs(5),
            ordered: true,
        })
        .await
        .expect("consume");

    let client = server.client(None);
    client.login(&server.origin, None, "").await.expect("login");
    let api = IdentityServiceClient::new(client.channel(&server.origin).expect("channel"));
    let rename = |name: String| {
        let client = &client;
        let origin = server.origin.clone();
        let mut api = api.clone();
        async move {
            let request = client
                .authed(
                    &origin,
                    UpdateProfileRequest {
                        display_name: Some(name),
                        ..Default::default()
                    },
                )
                .await
                .expect("token");
            api.update_profile(request)
                .await
                .expect("update while NATS is down")
        }
    };
    rename("before".into()).await;
    // The account's creation publishes its profile too; read up to the rename.
    loop {
        let delivery = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("the rename's event")
            .expect("delivery");
        let update = ProfileUpdated::decode(delivery.payload.as_ref()).expect("profile event");
        delivery.ack().await.expect("ack");
        if update.profile.is_some_and(|p| p.display_name == "before") {
            break;
        }
    }

    nats.kill().expect("kill nats");
    nats.wait().ok();
    const WRITES: usize = 20;
    for i in 0..WRITES {
        rename(format!("name {i}")).await;
    }
    // Nothing can arrive while the bus is down.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), events.recv())
            .await
            .is_err()
    );

    let mut nats = start_nats(port, &store);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut order = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while (0..WRITES).any(|i| !seen.contains_key(&format!("name {i}"))) {
        let delivery = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {WRITES} events arrived after NATS returned",
                    seen.len()
                )
            })
            .expect("delivery");
        let event = ProfileUpdated::decode(delivery.payload.clone()).expect("payload");
        let name = event.profile.expect("profile").display_name;
        // "before" may come again: its ack may not have reached NATS before the kill, and
        // delivery to consumers is at least once.
        if name.starts_with("name ") {
            order.push(name.clone());
        }
        *seen.entry(name).or_default() += 1;
        delivery.ack().await.expect("ack");
    }
    // Give duplicates a chance to show up.
    while let Ok(Some(delivery)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await
    {
        let event = ProfileUpdated::decode(delivery.payload.clone()).expect("payload");
        *seen
            .entry(event.profile.expect("profile").display_name)
            .or_default() += 1;
        delivery.ack().await.ok();
    }
    for i in 0..WRITES {
        assert_eq!(
            seen.get(&format!("name {i}")),
            Some(&1),
            "event {i} delivered exactly once: {seen:?}"
        );
    }
    assert_eq!(
        seen.keys().filter(|n| n.starts_with("name ")).count(),
        WRITES
    );
    let expected: Vec<String> = (0..WRITES).map(|i| format!("name {i}")).collect();
    assert_eq!(
        order, expected,
        "events of one subject arrive in commit order"
    );
    drop(events);
    server.finish().await;
    nats.kill().ok();
    nats.wait().ok();
    std::fs::remove_dir_all(store).ok();
}
