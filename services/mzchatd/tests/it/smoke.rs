use std::process::Command;

use mzchat_client::{Client, KeyStore, LocalIdentity};
use mzchat_proto::{
    guild::{ListGuildsRequest, guild_service_client::GuildServiceClient},
    media::{GetFileRequest, media_service_client::MediaServiceClient},
};
use tonic::Code;

use crate::daemon::{Daemon, unique};

fn client_for(origin: &str) -> Client {
    let store = KeyStore::new(std::env::temp_dir().join(unique("mzchatd-client-")));
    store
        .save_identity(&LocalIdentity::generate(origin, "laptop").expect("keys"))
        .expect("save");
    Client::open(store).expect("client")
}

// Multi-threaded: the client's connection must keep running while the test blocks on the
// process, or the server's graceful shutdown would wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_process_mode_serves_what_is_built_and_honestly_refuses_the_rest() {
    let data = std::env::temp_dir().join(unique("mzchatd-smoke-"));
    let mut daemon = Daemon::start(&data, &[]);
    let client = client_for(&daemon.origin);
    client.login(&daemon.origin, None, "").await.expect("login");
    assert_eq!(
        client.whoami(&daemon.origin).await.expect("whoami").user_id,
        client.identity().user_id()
    );

    let channel = client.channel(&daemon.origin).expect("channel");
    // Guilds and media are served.
    let request = client
        .authed(&daemon.origin, ListGuildsRequest::default())
        .await
        .expect("token");
    let guilds = GuildServiceClient::new(channel.clone())
        .list_guilds(request)
        .await
        .expect("list guilds");
    assert!(guilds.into_inner().guilds.is_empty());
    let request = client
        .authed(
            &daemon.origin,
            GetFileRequest {
                file_id: "0190a3e4-0000-7000-8000-000000000000.png".into(),
            },
        )
        .await
        .expect("token");
    let status = MediaServiceClient::new(channel)
        .get_file(request)
        .await
        .expect_err("no such file");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Browsers reach the same services over gRPC-Web (HTTP/1.1).
    let web = grpc_web_call(
        daemon.port,
        "/mzchat.identity.v1.ServerInfoService/GetServerInfo",
    )
    .await;
    assert!(web.starts_with("HTTP/1.1 200"), "{web}");
    assert!(web.contains("application/grpc-web"), "{web}");
    assert!(
        web.contains(&daemon.origin),
        "the reply carries the origin: {web}"
    );

    let metrics = reqwest_like_get(daemon.admin_port, "/metrics").await;
    assert!(
        metrics.contains("mzchat_grpc_server_handled_total"),
        "{metrics}"
    );
    assert!(metrics.contains("method=\"Login\""), "{metrics}");

    assert!(
        daemon.terminate().success(),
        "clean exit on SIGTERM: {}",
        daemon.log_text()
    );
    std::fs::remove_dir_all(data).ok();
}

#[test]
fn an_invalid_configuration_exits_64_before_binding() {
    let output = Command::new(env!("CARGO_BIN_EXE_mzchatd"))
        .args(["all", "--origin", "http://chat.example.org"])
        .output()
        .expect("run mzchatd");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--origin"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_mzchatd"))
        .args(["identity", "--insecure-dev"])
        .output()
        .expect("run mzchatd");
    assert_eq!(
        output.status.code(),
        Some(64),
        "split mode needs an internal token"
    );
}

/// A plain HTTP/1.0 GET on the admin port.
pub async fn reqwest_like_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("admin port");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_bus() {
    let nats = crate::daemon::Nats::start();
    let data = std::env::temp_dir().join(unique("mzchatd-ready-"));
    let (url, prefix) = (nats.url(), unique("ready"));
    let daemon = Daemon::start(
        &data,
        &["--nats-url", url.as_str(), "--bus-prefix", prefix.as_str()],
    );
    let ready = |port| async move { reqwest_like_get(port, "/readyz").await };
    // The listener accepts connections a moment before the process reports ready.
    let mut up = false;
    for _ in 0..50 {
        if ready(daemon.admin_port).await.starts_with("HTTP/1.0 200") {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(up, "ready after start: {}", daemon.log_text());
    drop(nats);
    let mut unready = false;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if ready(daemon.admin_port).await.contains(" 503 ") {
            unready = true;
            break;
        }
    }
    assert!(
        unready,
        "/readyz turns 503 when NATS is gone: {}",
        daemon.log_text()
    );
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}

/// An empty unary gRPC-Web call over HTTP/1.1; returns the raw response.
async fn grpc_web_call(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("grpc port");
    // One uncompressed frame with an empty message: flag 0, length 0.
    let body = [0u8, 0, 0, 0, 0];
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(&body).await.expect("write body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    String::from_utf8_lossy(&response).into_owned()
}
