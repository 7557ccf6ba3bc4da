use mzchat_proto::identity::{
    CreateSyncMailboxRequest, SyncMailboxRequest, identity_service_client::IdentityServiceClient,
};
use tonic::Code;

use crate::{
    both_backends,
    harness::{Backend, TestServer},
};

both_backends!(pairing_works_when_the_two_sides_reach_different_replicas);

async fn pairing_works_when_the_two_sides_reach_different_replicas(backend: Backend) {
    let first = TestServer::start(backend).await;
    // A second replica of the same homeserver: same origin, storage and bus.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let second = TestServer::start_on(first.shared.clone(), listener, &first.origin, |_| {}).await;
    let desktop = first.client(None);
    desktop.login(&first.origin, None, "").await.expect("login");

    let mut on_first = IdentityServiceClient::new(desktop.channel(&first.origin).expect("channel"));
    let request = desktop
        .authed(&first.origin, CreateSyncMailboxRequest {})
        .await
        .expect("token");
    let created = on_first
        .create_sync_mailbox(request)
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.session_id.len(), 32);
    assert!(
        created
            .qr_url
            .ends_with(&format!("/qr/login/{}", created.session_id))
    );
    let session_id = created.session_id;

    // The new device talks to the second replica, without a session.
    let second_channel = tonic::transport::Endpoint::from_shared(format!("http://{}", second.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut on_second = IdentityServiceClient::new(second_channel);
    let joiner = tokio::spawn({
        let mut on_second = on_second.clone();
        let session_id = session_id.clone();
        async move {
            on_second
                .sync_mailbox(SyncMailboxRequest {
                    session_id,
                    payload: b"mobile keys".to_vec(),
                    wait_for_data: true,
                })
                .await
        }
    });

    let request = desktop
        .authed(
            &first.origin,
            SyncMailboxRequest {
                session_id: session_id.clone(),
                payload: vec![],
                wait_for_data: true,
            },
        )
        .await
        .expect("token");
    let received = on_first
        .sync_mailbox(request)
        .await
        .expect("initiator waits")
        .into_inner();
    assert!(received.has_data);
    assert_eq!(received.payload, b"mobile keys");

    let request = desktop
        .authed(
            &first.origin,
            SyncMailboxRequest {
                session_id: session_id.clone(),
                payload: b"signed certificate".to_vec(),
                wait_for_data: false,
            },
        )
        .await
        .expect("token");
    on_first
        .sync_mailbox(request)
        .await
        .expect("initiator posts");
    let joined = joiner
        .await
        .expect("join")
        .expect("joiner receives")
        .into_inner();
    assert_eq!(joined.payload, b"signed certificate");

    // Read by both sides: the mailbox is gone.
    let gone = on_second
        .sync_mailbox(SyncMailboxRequest {
            session_id,
            payload: vec![],
            wait_for_data: false,
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    second.stop().await;
    first.finish().await;
}

both_backends!(mailbox_rules_are_enforced);

async fn mailbox_rules_are_enforced(backend: Backend) {
    let server = TestServer::start(backend).await;
    let desktop = server.client(None);
    desktop
        .login(&server.origin, None, "")
        .await
        .expect("login");
    let mut api = IdentityServiceClient::new(desktop.channel(&server.origin).expect("channel"));
    let request = desktop
        .authed(&server.origin, CreateSyncMailboxRequest {})
        .await
        .expect("token");
    let session_id = api
        .create_sync_mailbox(request)
        .await
        .expect("create")
        .into_inner()
        .session_id;

    let post = |payload: Vec<u8>| SyncMailboxRequest {
        session_id: session_id.clone(),
        payload,
        wait_for_data: false,
    };
    assert_eq!(
        api.sync_mailbox(post(vec![0; 16 * 1024 + 1]))
            .await
            .expect_err("too big")
            .code(),
        Code::InvalidArgument
    );
    api.sync_mailbox(post(b"keys".to_vec()))
        .await
        .expect("joiner posts");
    assert_eq!(
        api.sync_mailbox(post(b"again".to_vec()))
            .await
            .expect_err("twice")
            .code(),
        Code::AlreadyExists
    );
    let unknown = SyncMailboxRequest {
        session_id: "0".repeat(32),
        payload: vec![],
        wait_for_data: false,
    };
    assert_eq!(
        api.sync_mailbox(unknown).await.expect_err("unknown").code(),
        Code::NotFound
    );
    let malformed = SyncMailboxRequest {
        session_id: "zz".into(),
        payload: vec![],
        wait_for_data: false,
    };
    assert_eq!(
        api.sync_mailbox(malformed)
            .await
            .expect_err("malformed")
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        api.create_sync_mailbox(CreateSyncMailboxRequest {})
            .await
            .expect_err("no session")
            .code(),
        Code::Unauthenticated
    );
    // Two long polls may wait on a mailbox (one per side); of three, one is refused at once
    // while the other two wait.
    let wait = SyncMailboxRequest {
        wait_for_data: true,
        ..post(vec![])
    };
    let polls = (0..3).map(|_| {
        let (mut api, wait) = (api.clone(), wait.clone());
        Box::pin(async move { api.sync_mailbox(wait).await })
    });
    let (first, _, waiting) = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        futures::future::select_all(polls),
    )
    .await
    .expect("one poll answered at once");
    let refused = first.expect_err("the third waiter is refused");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    drop(waiting);
    server.finish().await;
}

both_backends!(a_payload_is_handed_out_once);

async fn a_payload_is_handed_out_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let desktop = server.client(None);
    desktop
        .login(&server.origin, None, "")
        .await
        .expect("login");
    let mut api = IdentityServiceClient::new(desktop.channel(&server.origin).expect("channel"));
    let request = desktop
        .authed(&server.origin, CreateSyncMailboxRequest {})
        .await
        .expect("token");
    let session_id = api
        .create_sync_mailbox(request)
        .await
        .expect("create")
        .into_inner()
        .session_id;
    let request = desktop
        .authed(
            &server.origin,
            SyncMailboxRequest {
                session_id: session_id.clone(),
                payload: b"certificate".to_vec(),
                wait_for_data: false,
            },
        )
        .await
        .expect("token");
    api.sync_mailbox(request).await.expect("initiator posts");
    // Two anonymous readers (the new device and someone who saw the QR code): one gets it.
    let read = || SyncMailboxRequest {
        session_id: session_id.clone(),
        payload: vec![],
        wait_for_data: false,
    };
    let (mut one, mut other) = (api.clone(), api.clone());
    let (a, b) = tokio::join!(one.sync_mailbox(read()), other.sync_mailbox(read()));
    let got: Vec<bool> = [a, b]
        .into_iter()
        .map(|r| r.expect("read").into_inner().has_data)
        .collect();
    assert_eq!(
        got.iter().filter(|g| **g).count(),
        1,
        "exactly one reader gets the payload: {got:?}"
    );
    assert!(
        !api.sync_mailbox(read())
            .await
            .expect("read")
            .into_inner()
            .has_data,
        "never again"
    );
    server.finish().await;
}
