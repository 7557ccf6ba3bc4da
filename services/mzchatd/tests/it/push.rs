//! Push endpoint registration on a real `mzchatd all` (PROTOCOL.md section 9): endpoints are
//! vetted as untrusted URLs and go with a revoked device.

use std::time::{Duration, Instant};

use mzchat_client::Client;
use mzchat_proto::push::{
    DistributorKind, ListDistributorsRequest, RegisterDistributorRequest, RegisterFcmTokenRequest,
    UnregisterDistributorRequest, push_service_client::PushServiceClient,
};
use tonic::Code;

use crate::{
    daemon::{Daemon, unique},
    federation::{other_device, user},
};

pub fn distributor(device_id: &str, url: &str) -> RegisterDistributorRequest {
    RegisterDistributorRequest {
        device_id: device_id.into(),
        endpoint_url: url.into(),
        kind: DistributorKind::UnifiedPush as i32,
        p256dh: None,
        auth: None,
    }
}

pub async fn register(
    client: &Client,
    origin: &str,
    request: RegisterDistributorRequest,
) -> Result<(), tonic::Status> {
    let request = client.authed(origin, request).await.expect("token");
    PushServiceClient::new(client.channel(origin).expect("channel"))
        .register_distributor(request)
        .await
        .map(|_| ())
}

async fn list(client: &Client, origin: &str) -> Vec<mzchat_proto::push::Distributor> {
    let request = client
        .authed(origin, ListDistributorsRequest {})
        .await
        .expect("token");
    PushServiceClient::new(client.channel(origin).expect("channel"))
        .list_distributors(request)
        .await
        .expect("list")
        .into_inner()
        .distributors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_register_vetted_endpoints_that_go_with_the_device() {
    let data = std::env::temp_dir().join(unique("mzchatd-push-"));
    let daemon = Daemon::start(&data, &["--push-allow-endpoint-hosts", "127.0.0.1"]);
    let origin = daemon.origin.clone();
    let laptop = user(&origin, "laptop");
    laptop.login(&origin, None, "").await.expect("login");

    // A local distributor on the allow-list may use http on loopback.
    register(
        &laptop,
        &origin,
        distributor("laptop", "http://127.0.0.1:9/up/laptop"),
    )
    .await
    .expect("allow-listed endpoint");
    let listed = list(&laptop, &origin).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].endpoint_url, "http://127.0.0.1:9/up/laptop");
    assert!(!listed[0].encrypted);

    for (url, why) in [
        ("http://push.example.org/up", "plain http"),
        ("https://127.0.0.2:8443/up", "loopback, not allow-listed"),
        ("https://localhost/up", "a name resolving to loopback"),
        ("https://10.0.0.1/up", "a private address"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://user:pw@push.example.org/up", "credentials"),
    ] {
        let status = register(&laptop, &origin, distributor("laptop", url))
            .await
            .expect_err(why);
        assert_eq!(status.code(), Code::InvalidArgument, "{why}: {status:?}");
    }
    let mut web_push = distributor("laptop", "http://127.0.0.1:9/wp");
    web_push.kind = DistributorKind::WebPush as i32;
    let status = register(&laptop, &origin, web_push)
        .await
        .expect_err("keys missing");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = register(
        &laptop,
        &origin,
        distributor("phone", "http://127.0.0.1:9/up"),
    )
    .await
    .expect_err("another device's registration");
    assert_eq!(status.code(), Code::PermissionDenied);
    let mut push = PushServiceClient::new(laptop.channel(&origin).expect("channel"));
    let status = push
        .list_distributors(ListDistributorsRequest {})
        .await
        .expect_err("no session");
    assert_eq!(status.code(), Code::Unauthenticated);
    let request = laptop
        .authed(
            &origin,
            RegisterFcmTokenRequest {
                device_id: "laptop".into(),
                token: "fcm-token-1".into(),
            },
        )
        .await
        .expect("token");
    let status = push
        .register_fcm_token(request)
        .await
        .expect_err("this server has no FCM credentials");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    // A user homed elsewhere registers push at home, not here.
    let visitor = user("http://elsewhere.example", "laptop");
    visitor.login(&origin, None, "").await.expect("visitor");
    let status = register(
        &visitor,
        &origin,
        distributor("laptop", "http://127.0.0.1:9/up"),
    )
    .await
    .expect_err("not homed here");
    assert_eq!(status.code(), Code::FailedPrecondition);

    // The phone sees the laptop's endpoint; once the laptop is revoked, it is gone.
    let phone = other_device(&laptop, "phone");
    phone.login(&origin, None, "").await.expect("phone");
    register(
        &phone,
        &origin,
        distributor("phone", "http://127.0.0.1:9/up/phone"),
    )
    .await
    .expect("phone's endpoint");
    assert_eq!(list(&phone, &origin).await.len(), 2);
    laptop
        .revoke_device(&origin, "laptop")
        .await
        .expect("revoke");
    let start = Instant::now();
    loop {
        let devices: Vec<String> = list(&phone, &origin)
            .await
            .into_iter()
            .map(|d| d.device_id)
            .collect();
        if devices == ["phone"] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "revoked device's endpoint stays: {devices:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its access token still verifies for a while, but the revoked device cannot come back.
    let status = register(
        &laptop,
        &origin,
        distributor("laptop", "http://127.0.0.1:9/again"),
    )
    .await
    .expect_err("a revoked device registers again");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let request = phone
        .authed(
            &origin,
            UnregisterDistributorRequest {
                device_id: "phone".into(),
            },
        )
        .await
        .expect("token");
    push.unregister_distributor(request)
        .await
        .expect("unregister");
    assert!(list(&phone, &origin).await.is_empty());
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}

/// Reads one HTTP/1.1 request: its head (request line and headers) and its body.
pub async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    use tokio::io::AsyncReadExt;
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return Some((head.to_owned(), body.to_owned()));
            }
        }
        if n == 0 {
            return None;
        }
    }
}

/// A UnifiedPush distributor on loopback: answers 201 to every POST and hands over the bodies.
pub async fn distributor_server() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(Instant, String)>,
) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/up/bob-phone",
        listener.local_addr().expect("addr")
    );
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let Some((_, body)) = read_request(&mut stream).await else {
                    return;
                };
                let _ = tx.send((Instant::now(), body));
                let _ = stream
                    .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_reaches_the_mentioned_users_distributor_without_its_text() {
    use mzchat_proto::guild::{SendMessageRequest, message_service_client::MessageServiceClient};
    let data = std::env::temp_dir().join(unique("mzchatd-push-mention-"));
    let daemon = Daemon::start(&data, &["--push-allow-endpoint-hosts", "127.0.0.1"]);
    let origin = daemon.origin.clone();
    let (url, mut pushes) = distributor_server().await;
    let alice = user(&origin, "laptop");
    let (guild_id, channel_id, link) = crate::federation::guild_with_invite(&alice, &origin).await;
    let bob = user(&origin, "phone");
    bob.join_invite(&link, None).await.expect("bob joins");
    register(&bob, &origin, distributor("phone", &url))
        .await
        .expect("bob's distributor");

    let mention = SendMessageRequest {
        guild_id: guild_id.clone(),
        channel_id: channel_id.clone(),
        content: "secret plans for bob".into(),
        mention_user_ids: vec![bob.identity().user_id()],
        ..Default::default()
    };
    let request = alice.authed(&origin, mention).await.expect("token");
    let sent_at = Instant::now();
    let message = MessageServiceClient::new(alice.channel(&origin).expect("channel"))
        .send_message(request)
        .await
        .expect("send")
        .into_inner()
        .message
        .expect("message");
    let (arrived, body) = tokio::time::timeout(Duration::from_secs(20), pushes.recv())
        .await
        .expect("the push arrives")
        .expect("distributor running");
    eprintln!(
        "mention push reached the distributor {:?} after the send",
        arrived - sent_at
    );
    assert!(body.contains(&message.id), "{body}");
    assert!(body.contains(r#""kind":"MENTION""#), "{body}");
    assert!(
        body.contains(&guild_id) && body.contains(&channel_id),
        "{body}"
    );
    // Alice gave no name: the default is the start of her user id.
    let alice_name: String = alice.identity().user_id().chars().take(8).collect();
    assert!(
        body.contains(&format!(r#""sender_display_name":"{alice_name}""#)),
        "{body}"
    );
    assert!(
        !body.contains("secret"),
        "no message text in a push: {body}"
    );
    // The outcome is counted once the distributor's answer is read.
    let delivered = r#"mzchat_push_delivery_attempts_total{outcome="delivered"} 1"#;
    let start = Instant::now();
    loop {
        let metrics = crate::smoke::reqwest_like_get(daemon.admin_port, "/metrics").await;
        if metrics.contains(delivered) {
            assert!(
                metrics.contains("mzchat_push_delivery_seconds_count 1"),
                "{metrics}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}

/// The reference text's relay flow: a mention on B of a user homed on A reaches the user's
/// distributor through A (B holds no registration of the user's devices; it relays with the
/// delegation token A gave it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_on_another_server_is_relayed_through_the_home_server() {
    use mzchat_proto::guild::{SendMessageRequest, message_service_client::MessageServiceClient};
    use mzchat_proto::identity::Verification;

    use crate::federation::{Backend, Homeserver, guild_with_invite, wait_for_account};
    let flags = ["--push-allow-endpoint-hosts", "127.0.0.1"];
    let a = Homeserver::start(Backend::Embedded, &flags);
    let b = Homeserver::start(Backend::Embedded, &flags);
    let (url, mut pushes) = distributor_server().await;
    let bob = user(&a.origin, "phone");
    bob.login(&a.origin, None, "").await.expect("bob at home");
    register(&bob, &a.origin, distributor("phone", &url))
        .await
        .expect("bob's distributor, on A");

    let alice = user(&b.origin, "laptop");
    let (guild_id, channel_id, link) = guild_with_invite(&alice, &b.origin).await;
    bob.join_invite(&link, None).await.expect("bob joins on B");
    wait_for_account(&bob, &b.origin, Duration::from_secs(30), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;

    // B's push-relay keeps A's token from the same answer; mention until a push arrives.
    let mut messages = MessageServiceClient::new(alice.channel(&b.origin).expect("channel"));
    let mut arrival = None;
    for attempt in 0..10 {
        let mention = SendMessageRequest {
            guild_id: guild_id.clone(),
            channel_id: channel_id.clone(),
            content: format!("bob, look ({attempt})"),
            mention_user_ids: vec![bob.identity().user_id()],
            ..Default::default()
        };
        let request = alice.authed(&b.origin, mention).await.expect("token");
        let sent_at = Instant::now();
        let message = messages
            .send_message(request)
            .await
            .expect("send")
            .into_inner()
            .message
            .expect("message");
        if let Ok(Some((at, body))) =
            tokio::time::timeout(Duration::from_secs(3), pushes.recv()).await
        {
            arrival = Some((at - sent_at, body, message.id));
            break;
        }
    }
    let (latency, body, message_id) = arrival.expect("a relayed push reached bob's distributor");
    eprintln!("mention push relayed B -> A -> distributor in {latency:?}");
    assert!(body.contains(&message_id), "{body}");
    assert!(
        body.contains(&format!(r#""origin":"{}""#, b.origin)),
        "{body}"
    );
    assert!(!body.contains("look"), "no message text: {body}");
}

/// A distributor that answers each request with the next of `statuses` (then 201).
async fn scripted_distributor(
    statuses: Vec<u16>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<u16>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/up/device", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut script = statuses.into_iter();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf).await;
            let status = script.next().unwrap_or(201);
            let _ = tx.send(status);
            let answer = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_services_are_retried_and_gone_endpoints_forgotten() {
    use mzchat_proto::guild::{SendMessageRequest, message_service_client::MessageServiceClient};
    let data = std::env::temp_dir().join(unique("mzchatd-push-retry-"));
    let daemon = Daemon::start(&data, &["--push-allow-endpoint-hosts", "127.0.0.1"]);
    let origin = daemon.origin.clone();
    let alice = user(&origin, "laptop");
    let (guild_id, channel_id, link) = crate::federation::guild_with_invite(&alice, &origin).await;
    let bob = user(&origin, "phone");
    bob.join_invite(&link, None).await.expect("bob joins");
    let mention = |text: &str| SendMessageRequest {
        guild_id: guild_id.clone(),
        channel_id: channel_id.clone(),
        content: text.into(),
        mention_user_ids: vec![bob.identity().user_id()],
        ..Default::default()
    };
    let mut messages = MessageServiceClient::new(alice.channel(&origin).expect("channel"));

    // 503, then 429: the push comes again after a backoff and is delivered on the third try.
    let (url, mut answers) = scripted_distributor(vec![503, 429]).await;
    register(&bob, &origin, distributor("phone", &url))
        .await
        .expect("register");
    let request = alice.authed(&origin, mention("one")).await.expect("token");
    messages.send_message(request).await.expect("send");
    let mut seen = Vec::new();
    while seen.last() != Some(&201) {
        let status = tokio::time::timeout(Duration::from_secs(20), answers.recv())
            .await
            .expect("the push is tried again")
            .expect("distributor running");
        seen.push(status);
    }
    assert_eq!(seen, [503, 429, 201]);

    // 410: the endpoint is gone, and the registration with it.
    let (url, mut answers) = scripted_distributor(vec![410]).await;
    register(&bob, &origin, distributor("phone", &url))
        .await
        .expect("register");
    let request = alice.authed(&origin, mention("two")).await.expect("token");
    messages.send_message(request).await.expect("send");
    let status = tokio::time::timeout(Duration::from_secs(20), answers.recv())
        .await
        .expect("the push is tried")
        .expect("distributor running");
    assert_eq!(status, 410);
    let start = Instant::now();
    while !list(&bob, &origin).await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the gone endpoint stays registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}

/// A delegation token is good only for the server it was issued to, and only as signed: C
/// relaying the token A gave B, or a tampered copy, is refused by A (and C dead-letters the job).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_or_forged_delegation_token_is_refused() {
    use mzchat_proto::{
        common::SignedStatement,
        federation::{
            FederationJob, ListDeadLettersRequest, PushKind, PushNotificationJob, PushPayload,
            federation_admin_service_client::FederationAdminServiceClient, federation_job::Kind,
        },
        identity::Verification,
    };
    use prost::Message;
    use sea_orm::{ConnectionTrait, Statement};

    use crate::federation::{
        Backend, Homeserver, database_url, guild_with_invite, nats_url, wait_for_account,
    };
    let a = Homeserver::start(Backend::PostgresNats, &[]);
    let b = Homeserver::start(Backend::PostgresNats, &[]);
    let c = Homeserver::start(Backend::PostgresNats, &[]);
    let bob = user(&a.origin, "phone");
    bob.login(&a.origin, None, "").await.expect("bob at home");
    let alice = user(&b.origin, "laptop");
    let (guild_id, channel_id, link) = guild_with_invite(&alice, &b.origin).await;
    bob.join_invite(&link, None).await.expect("bob joins on B");
    wait_for_account(&bob, &b.origin, Duration::from_secs(30), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;

    // The token A issued to B, as B's push-relay keeps it.
    let db = sea_orm::Database::connect(database_url())
        .await
        .expect("postgres");
    let sql = format!(
        "SELECT token_body, token_signature FROM \"{}\".held_tokens WHERE user_id = '{}'",
        b.schema("push"),
        bob.identity().user_id()
    );
    let start = Instant::now();
    let token = loop {
        let row = db
            .query_one_raw(Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql.clone(),
            ))
            .await
            .expect("query");
        if let Some(row) = row {
            break SignedStatement {
                body: row.try_get_by_index(0).expect("body"),
                signature: row.try_get_by_index(1).expect("signature"),
            };
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "B holds no token for bob"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // C relays it to A, once as it is and once tampered with.
    let mut forged = token.clone();
    forged.signature[0] ^= 1;
    let nats = async_nats::jetstream::new(async_nats::connect(nats_url()).await.expect("nats"));
    let prefix = c.bus_prefix.clone().expect("prefix");
    for token in [token, forged] {
        let now = mzchat_client::statements::unix_now();
        let job = FederationJob {
            id: uuid::Uuid::now_v7().to_string(),
            destination: a.origin.clone(),
            created_at: Some(prost_types::Timestamp {
                seconds: now,
                nanos: 0,
            }),
            expires_at: Some(prost_types::Timestamp {
                seconds: now + 600,
                nanos: 0,
            }),
            kind: Some(Kind::PushNotification(PushNotificationJob {
                delegation_token: Some(token),
                payload: Some(PushPayload {
                    origin: c.origin.clone(),
                    guild_id: guild_id.clone(),
                    channel_id: channel_id.clone(),
                    message_id: uuid::Uuid::now_v7().to_string(),
                    sender_display_name: String::new(),
                    kind: PushKind::Mention as i32,
                    sent_at: None,
                }),
            })),
        };
        nats.publish(
            format!("{prefix}.federation.v1.job.push_notification"),
            job.encode_to_vec().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    }
    let mut admin = FederationAdminServiceClient::new(bob.channel(&c.origin).expect("channel"));
    let start = Instant::now();
    let dead = loop {
        let mut request = tonic::Request::new(ListDeadLettersRequest::default());
        let token = format!("{prefix}-internal").parse().expect("ascii");
        request
            .metadata_mut()
            .insert("mzchat-internal-token", token);
        let dead = admin
            .list_dead_letters(request)
            .await
            .expect("dead letters")
            .into_inner()
            .dead_letters;
        if dead.len() == 2 || start.elapsed() > Duration::from_secs(30) {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dead.len(), 2, "both relays refused: {dead:?}");
    for letter in &dead {
        assert!(letter.last_error.contains("PermissionDenied"), "{letter:?}");
    }
    for server in [a, b, c] {
        server.remove().await;
    }
}
