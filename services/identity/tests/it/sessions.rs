use mzchat_platform::bus::ConsumerSpec;
use mzchat_proto::{
    common::MigrationProof,
    federation::{FederationJob, federation_job},
    identity::{
        AccountKind, LoginRequest, RefreshSessionRequest, Verification,
        session_service_client::SessionServiceClient,
    },
};
use prost::Message;
use std::time::Duration;
use tonic::Code;

use crate::{
    both_backends,
    harness::{Backend, Shared, TestServer},
};

both_backends!(
    login_registers_a_local_account_and_refresh_rotates,
    reusing_a_refresh_token_revokes_the_session,
    registration_policies_are_enforced,
    a_replayed_or_misaddressed_proof_is_refused,
    a_foreign_user_gets_a_shadow_account_and_a_verify_job,
    revoking_a_device_ends_its_sessions_and_logins,
    a_user_migrates_here_and_a_bad_or_stale_proof_moves_nothing,
);

async fn login_registers_a_local_account_and_refresh_rotates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(None);
    let response = client.login(&server.origin, None, "").await.expect("login");
    let account = response.account.expect("account");
    assert_eq!(account.kind, AccountKind::Local as i32);
    assert_eq!(account.verification, Verification::Verified as i32);
    assert_eq!(account.home_server, server.origin);
    assert_eq!(
        client.whoami(&server.origin).await.expect("whoami").user_id,
        client.identity().user_id()
    );

    let first = client.session(&server.origin).expect("session");
    client.refresh(&server.origin).await.expect("refresh");
    let second = client.session(&server.origin).expect("session");
    assert_ne!(
        first.refresh_token, second.refresh_token,
        "refresh tokens rotate"
    );
    assert_ne!(first.access_token, second.access_token);
    client
        .whoami(&server.origin)
        .await
        .expect("new access token works");
    server.finish().await;
}

async fn reusing_a_refresh_token_revokes_the_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(None);
    client.login(&server.origin, None, "").await.expect("login");
    let stolen = client
        .session(&server.origin)
        .expect("session")
        .refresh_token;
    client
        .refresh(&server.origin)
        .await
        .expect("legitimate refresh");
    let mut sessions = SessionServiceClient::new(client.channel(&server.origin).expect("channel"));
    let replay = sessions
        .refresh_session(RefreshSessionRequest {
            refresh_token: stolen,
        })
        .await
        .expect_err("reuse refused");
    assert_eq!(replay.code(), Code::Unauthenticated);
    assert!(
        replay.message().contains("already used"),
        "{}",
        replay.message()
    );
    // The legitimate holder's newer token died with the chain.
    let err = client
        .refresh(&server.origin)
        .await
        .expect_err("chain revoked");
    assert!(err.to_string().contains("revoked"), "{err}");
    server.finish().await;
}

async fn registration_policies_are_enforced(backend: Backend) {
    let shared = Shared::new(backend).await;
    let closed = TestServer::start_with(shared.clone(), |c| {
        c.registration = mzchat_identity::RegistrationPolicy::Closed
    })
    .await;
    let err = closed
        .client(None)
        .login(&closed.origin, None, "")
        .await
        .expect_err("closed");
    assert!(
        matches!(err, mzchat_client::ClientError::Rpc(ref s) if s.code() == Code::PermissionDenied),
        "{err}"
    );
    // Nor can a visitor (a shadow account) migrate its home here.
    let mut visitor = closed.client(Some("http://elsewhere.example"));
    visitor
        .login(&closed.origin, None, "")
        .await
        .expect("visitors are welcome");
    let err = visitor
        .migrate(&closed.origin, &[], "")
        .await
        .expect_err("migrating here registers");
    assert!(
        matches!(err, mzchat_client::ClientError::Rpc(ref s) if s.code() == Code::PermissionDenied),
        "{err}"
    );
    closed.stop().await;

    let gated = TestServer::start_with(shared, |c| {
        c.registration = mzchat_identity::RegistrationPolicy::Token;
        c.registration_tokens = vec![mzchat_platform::Secret::new("let-me-in")];
    })
    .await;
    for token in ["", "wrong"] {
        let err = gated
            .client(None)
            .login(&gated.origin, None, token)
            .await
            .expect_err("refused");
        assert!(
            matches!(err, mzchat_client::ClientError::Rpc(ref s) if s.code() == Code::PermissionDenied),
            "{err}"
        );
    }
    let client = gated.client(None);
    client
        .login(&gated.origin, None, "let-me-in")
        .await
        .expect("token accepted");
    // An existing account logs in again without a token.
    client
        .login(&gated.origin, None, "")
        .await
        .expect("existing account");
    gated.finish().await;
}

async fn a_replayed_or_misaddressed_proof_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(None);
    let request = client
        .login_request(&server.origin, None, "")
        .expect("request");
    let mut sessions = SessionServiceClient::new(client.channel(&server.origin).expect("channel"));
    sessions.login(request.clone()).await.expect("first use");
    let replay = sessions.login(request.clone()).await.expect_err("replay");
    assert_eq!(replay.code(), Code::Unauthenticated);
    assert!(
        replay.message().contains("already used"),
        "{}",
        replay.message()
    );

    let elsewhere = LoginRequest {
        proof: client
            .login_request("https://c.example", None, "")
            .expect("request")
            .proof,
        ..request.clone()
    };
    let status = sessions.login(elsewhere).await.expect_err("wrong audience");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("not for this server"),
        "{}",
        status.message()
    );

    let garbage = LoginRequest {
        user_id: "not-a-user-id".into(),
        ..request
    };
    assert_eq!(
        sessions.login(garbage).await.expect_err("garbage").code(),
        Code::InvalidArgument
    );
    server.finish().await;
}

async fn a_foreign_user_gets_a_shadow_account_and_a_verify_job(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut jobs = server
        .shared
        .bus
        .consume(ConsumerSpec {
            stream: mzchat_platform::bus::streams::FEDERATION_JOBS,
            durable: "test-federation-sync".into(),
            filter: "federation.v1.job.>".into(),
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            ordered: false,
        })
        .await
        .expect("consume jobs");
    let home = "http://home.example:7600";
    let client = server.client(Some(home));
    let hint = mzchat_proto::common::ProfileHint {
        display_name: "Grace".into(),
        ..Default::default()
    };
    let account = client
        .login(&server.origin, Some(hint), "")
        .await
        .expect("login")
        .account
        .expect("account");
    assert_eq!(account.kind, AccountKind::Shadow as i32);
    assert_eq!(account.verification, Verification::Pending as i32);
    assert_eq!(account.home_server, home);
    assert_eq!(account.profile.expect("profile").display_name, "Grace");

    let delivery = tokio::time::timeout(Duration::from_secs(10), jobs.recv())
        .await
        .expect("a VerifyUser job within 10 s")
        .expect("delivery");
    let job = FederationJob::decode(delivery.payload.clone()).expect("job");
    assert_eq!(job.destination, home);
    match job.kind {
        Some(federation_job::Kind::VerifyUser(verify)) => {
            assert_eq!(verify.user_id, client.identity().user_id())
        }
        other => panic!("expected VerifyUser, got {other:?}"),
    }
    delivery.ack().await.expect("ack");
    drop(jobs);
    server.finish().await;
}

async fn revoking_a_device_ends_its_sessions_and_logins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(None);
    client.login(&server.origin, None, "").await.expect("login");
    client.whoami(&server.origin).await.expect("session works");
    client
        .revoke_device(&server.origin, "laptop")
        .await
        .expect("revoke");
    // Idempotent.
    client
        .revoke_device(&server.origin, "laptop")
        .await
        .expect("revoke again");

    let err = client
        .whoami(&server.origin)
        .await
        .expect_err("access token refused");
    assert!(
        matches!(err, mzchat_client::ClientError::Rpc(ref s) if s.code() == Code::Unauthenticated),
        "{err}"
    );
    assert!(
        client.refresh(&server.origin).await.is_err(),
        "refresh token revoked"
    );
    let err = client
        .login(&server.origin, None, "")
        .await
        .expect_err("login refused");
    assert!(err.to_string().contains("revoked"), "{err}");
    server.finish().await;
}

async fn a_user_migrates_here_and_a_bad_or_stale_proof_moves_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Homed elsewhere: the first login here makes a shadow account.
    let mut client = server.client(Some("http://old-home.example"));
    let account = client
        .login(&server.origin, None, "")
        .await
        .expect("shadow login")
        .account
        .expect("account");
    assert_eq!(account.kind(), AccountKind::Shadow);
    let mut sessions = SessionServiceClient::new(client.channel(&server.origin).expect("channel"));
    let now = mzchat_client::statements::unix_now();
    let attempt = |proof: MigrationProof| {
        let mut request = client
            .login_request(&server.origin, None, "")
            .expect("request");
        request.migration_proof = Some(proof);
        request
    };
    let identity = client.identity();
    let elsewhere =
        mzchat_client::statements::migration_proof(identity, "http://c.example", &[], now);
    let code = sessions
        .login(attempt(elsewhere))
        .await
        .expect_err("other server")
        .code();
    assert_eq!(code, Code::InvalidArgument);
    let mut forged = mzchat_client::statements::migration_proof(identity, &server.origin, &[], now);
    forged.migration_signature[0] ^= 1;
    let code = sessions
        .login(attempt(forged))
        .await
        .expect_err("forged")
        .code();
    assert_eq!(code, Code::Unauthenticated);
    let stale =
        mzchat_client::statements::migration_proof(identity, &server.origin, &[], now - 3600);
    let code = sessions
        .login(attempt(stale))
        .await
        .expect_err("stale")
        .code();
    assert_eq!(code, Code::Unauthenticated);

    let targets = vec!["http://old-home.example".to_owned()];
    let account = client
        .migrate(&server.origin, &targets, "")
        .await
        .expect("migration")
        .account
        .expect("account");
    assert_eq!(account.kind(), AccountKind::Local);
    assert_eq!(account.home_server, server.origin);
    // The keys on disk now name this server: an ordinary login works.
    let again = client
        .login(&server.origin, None, "")
        .await
        .expect("login after migration");
    assert_eq!(again.account.expect("account").kind(), AccountKind::Local);
    server.finish().await;
}

both_backends!(a_certificate_naming_another_home_server_is_refused);

async fn a_certificate_naming_another_home_server_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(None);
    client.login(&server.origin, None, "").await.expect("login");
    // The same keys, now claiming a different home server without a migration proof.
    let original = client.identity();
    let moved = mzchat_client::LocalIdentity {
        root: original.root.clone(),
        device: original.device.clone(),
        device_id: original.device_id.clone(),
        home_server: "http://elsewhere.example:7600".into(),
    };
    let store = mzchat_client::KeyStore::new(
        std::env::temp_dir().join(crate::harness::unique("mzchat-moved-")),
    );
    store.save_identity(&moved).expect("save");
    let impostor = mzchat_client::Client::open(store).expect("client");
    let err = impostor
        .login(&server.origin, None, "")
        .await
        .expect_err("refused");
    match err {
        mzchat_client::ClientError::Rpc(status) => {
            assert_eq!(status.code(), Code::Unauthenticated);
            assert!(
                status.message().contains("homed on"),
                "{}",
                status.message()
            );
        }
        other => panic!("expected a status, got {other}"),
    }
    server.finish().await;
}

both_backends!(replicas_share_the_replay_cache_and_new_keys);

async fn replicas_share_the_replay_cache_and_new_keys(backend: Backend) {
    let first = TestServer::start(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let second = TestServer::start_on(first.shared.clone(), listener, &first.origin, |_| {}).await;
    let client = first.client(None);
    let request = client
        .login_request(&first.origin, None, "")
        .expect("request");
    let to_second = tonic::transport::Endpoint::from_shared(format!("http://{}", second.addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    SessionServiceClient::new(client.channel(&first.origin).expect("channel"))
        .login(request.clone())
        .await
        .expect("login on the first replica");
    let replay = SessionServiceClient::new(to_second.clone())
        .login(request)
        .await
        .expect_err("replay on the second replica");
    assert_eq!(replay.code(), Code::Unauthenticated);

    // The first replica rotates its keys; a token signed with the new key works on the second
    // at once, not only after its next periodic refresh.
    client.login(&first.origin, None, "").await.expect("login");
    let later = mzchat_platform::db::now_millis() + 91 * 86_400_000;
    first
        .identity
        .app()
        .keys()
        .refresh(first.identity.database(), later)
        .await
        .expect("rotate");
    client
        .refresh(&first.origin)
        .await
        .expect("token under the new key");
    let token = client.session(&first.origin).expect("session").access_token;
    let mut request = tonic::Request::new(mzchat_proto::identity::GetAccountRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    mzchat_proto::identity::identity_service_client::IdentityServiceClient::new(to_second)
        .get_account(request)
        .await
        .expect("second replica accepts the new key");
    second.stop().await;
    first.finish().await;
}

both_backends!(of_two_concurrent_refreshes_exactly_one_wins);

async fn of_two_concurrent_refreshes_exactly_one_wins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(None);
    client.login(&server.origin, None, "").await.expect("login");
    let token = client
        .session(&server.origin)
        .expect("session")
        .refresh_token;
    let sessions = SessionServiceClient::new(client.channel(&server.origin).expect("channel"));
    let refresh = || {
        let mut sessions = sessions.clone();
        let refresh_token = token.clone();
        async move {
            sessions
                .refresh_session(RefreshSessionRequest { refresh_token })
                .await
        }
    };
    let (a, b) = tokio::join!(refresh(), refresh());
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{a:?} / {b:?}");
    server.finish().await;
}

both_backends!(revoking_one_device_leaves_the_others_and_announces_it);

async fn revoking_one_device_leaves_the_others_and_announces_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut revoked = server
        .shared
        .bus
        .consume(ConsumerSpec {
            stream: mzchat_platform::bus::streams::IDENTITY,
            durable: "test-revocations".into(),
            filter: "identity.v1.device.revoked".into(),
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            ordered: true,
        })
        .await
        .expect("consume");
    let laptop = server.client(None);
    let original = laptop.identity();
    let phone_identity = mzchat_client::LocalIdentity {
        root: original.root.clone(),
        device: ed25519_dalek::SigningKey::from_bytes(&[42; 32]),
        device_id: "phone".into(),
        home_server: original.home_server.clone(),
    };
    let store = mzchat_client::KeyStore::new(
        std::env::temp_dir().join(crate::harness::unique("mzchat-phone-")),
    );
    store.save_identity(&phone_identity).expect("save");
    let phone = mzchat_client::Client::open(store).expect("client");
    laptop
        .login(&server.origin, None, "")
        .await
        .expect("laptop login");
    phone
        .login(&server.origin, None, "")
        .await
        .expect("phone login");

    laptop
        .revoke_device(&server.origin, "phone")
        .await
        .expect("revoke the phone");
    assert!(phone.whoami(&server.origin).await.is_err(), "phone is out");
    laptop
        .whoami(&server.origin)
        .await
        .expect("laptop still works");
    laptop
        .refresh(&server.origin)
        .await
        .expect("laptop refresh still works");

    let delivery = tokio::time::timeout(Duration::from_secs(10), revoked.recv())
        .await
        .expect("DeviceRevoked within 10 s")
        .expect("delivery");
    let event =
        mzchat_proto::identity::DeviceRevoked::decode(delivery.payload.clone()).expect("payload");
    assert_eq!(
        (event.user_id.as_str(), event.device_id.as_str()),
        (laptop.identity().user_id().as_str(), "phone")
    );
    delivery.ack().await.expect("ack");
    drop(revoked);
    server.finish().await;
}
