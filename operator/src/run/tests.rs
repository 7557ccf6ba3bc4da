use serde_json::json;
use tokio::net::TcpListener;

use super::*;
use crate::mock::{Expect, pair, verify};

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/operators/leases/mzchat-operator";

#[tokio::test]
async fn a_standby_replica_is_ready_reconciles_nothing_and_stops_on_shutdown() {
    let (client, server) = pair();
    let renewed = k8s_openapi::jiff::Timestamp::now();
    let held = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "mzchat-operator", "namespace": "operators", "resourceVersion": "7"},
        "spec": {"holderIdentity": "operator-b", "leaseDurationSeconds": 15, "renewTime": renewed},
    });
    // one election round, and no watch of Homeservers: another replica leads
    let server = server.run(vec![Expect::get(LEASE).reply(200, held)]);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    let config = Config {
        watch_namespace: None,
        lease_namespace: "operators".into(),
        identity: "operator-a".into(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(run(config, client, listener, async {
        let _ = stopped.await;
    }));
    let ready = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
    })
    .await
    .expect("joined");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    // let the first election round happen before stopping
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(5), running)
        .await
        .expect("run stops on shutdown")
        .expect("joined")
        .expect("the admin listener stopped cleanly");
    verify(server).await;
}
