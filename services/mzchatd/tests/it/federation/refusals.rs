//! Forged credentials, spoofed server calls, unknown users, revoked devices.

use super::*;

/// A server call as a forger would make it: metadata claiming `origin`, signed by `key`.
fn forged_call(
    origin: &str,
    destination: &str,
    key_id: &str,
    key: &ed25519_dalek::SigningKey,
    timestamp: i64,
    user_id: &str,
) -> tonic::Request<mzchat_proto::federation::VerifyUserRequest> {
    use ed25519_dalek::Signer;
    use mzchat_platform::federation::s2s;
    use prost::Message;
    use sha2::Digest;
    let message = mzchat_proto::federation::VerifyUserRequest {
        user_id: user_id.to_owned(),
    };
    let digest = sha2::Sha256::digest(message.encode_to_vec());
    let path = "/mzchat.federation.v1.IdentityFederationService/VerifyUser";
    let signature = key.sign(&s2s::signing_input(path, destination, timestamp, &digest));
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    for (name, value) in [
        (s2s::ORIGIN, origin.to_owned()),
        (s2s::DESTINATION, destination.to_owned()),
        (s2s::TIMESTAMP, timestamp.to_string()),
        (s2s::KEY_ID, key_id.to_owned()),
        (s2s::SIGNATURE, s2s::encode_signature(&signature.to_bytes())),
    ] {
        metadata.insert(name, value.parse().expect("ascii"));
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_credentials_and_spoofed_server_calls_are_refused() {
    use mzchat_proto::federation::identity_federation_service_client::IdentityFederationServiceClient;
    let a = Homeserver::start(Backend::Embedded, &[]);
    let b = Homeserver::start(Backend::Embedded, &[]);
    let alice = user(&a.origin, "laptop");
    alice
        .login(&a.origin, None, "")
        .await
        .expect("alice at home");
    let owner = user(&b.origin, "desk");
    let (_, _, link) = guild_with_invite(&owner, &b.origin).await;
    let (_, token) = mzchat_client::invites::parse_link(&link).expect("link");
    let mut guilds_b = GuildServiceClient::new(alice.channel(&b.origin).expect("channel"));
    let join =
        |login: mzchat_proto::identity::LoginRequest| mzchat_proto::guild::JoinInviteRequest {
            token: token.clone(),
            login: Some(mzchat_proto::guild::JoinInviteLogin {
                user_id: login.user_id,
                certificate: login.certificate,
                proof: login.proof,
                profile_hint: None,
            }),
        };

    // A certificate not signed by the user's root key.
    let mut forged = alice.login_request(&b.origin, None, "").expect("request");
    if let Some(cert) = forged.certificate.as_mut() {
        cert.signature[0] ^= 1;
    }
    let status = guilds_b
        .join_invite(join(forged))
        .await
        .expect_err("forged certificate");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // A proof given to A presented at B.
    let for_a = alice.login_request(&a.origin, None, "").expect("request");
    let status = guilds_b
        .join_invite(join(for_a))
        .await
        .expect_err("proof for A");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // A proof used twice.
    let once = alice.login_request(&b.origin, None, "").expect("request");
    guilds_b
        .join_invite(join(once.clone()))
        .await
        .expect("first use");
    let status = guilds_b
        .join_invite(join(once))
        .await
        .expect_err("replayed proof");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // Server calls to A: unsigned, signed by a stranger under B's name, stale, or for C.
    let mut federation_a =
        IdentityFederationServiceClient::new(alice.channel(&a.origin).expect("channel"));
    let request = mzchat_proto::federation::VerifyUserRequest {
        user_id: alice.identity().user_id(),
    };
    let status = federation_a
        .verify_user(request)
        .await
        .expect_err("unsigned");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let info = alice.server_info(&b.origin).await.expect("B's keys");
    let b_key_id = info.server_keys[0].key_id.clone();
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let now = mzchat_client::statements::unix_now();
    let user_id = alice.identity().user_id();
    for (what, destination, timestamp) in [
        ("signed by a stranger", a.origin.as_str(), now),
        ("stale", a.origin.as_str(), now - 600),
        ("for another server", "http://127.0.0.1:9", now),
    ] {
        let request = forged_call(
            &b.origin,
            destination,
            &b_key_id,
            &stranger,
            timestamp,
            &user_id,
        );
        let status = federation_a.verify_user(request).await.expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    }
    // A server that denies B refuses it before looking at the signature.
    let d = Homeserver::start(Backend::Embedded, &["--federation-deny", b.origin.as_str()]);
    let mut federation_d =
        IdentityFederationServiceClient::new(alice.channel(&d.origin).expect("channel"));
    let request = forged_call(&b.origin, &d.origin, &b_key_id, &stranger, now, &user_id);
    let status = federation_d
        .verify_user(request)
        .await
        .expect_err("denied origin");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // A user A has never heard of: B lets them in, then rejects them once A answers.
    let stranger_user = user(&a.origin, "laptop");
    stranger_user
        .join_invite(&link, None)
        .await
        .expect("optimistic join");
    wait_for_account(&stranger_user, &b.origin, Duration::from_secs(30), |acc| {
        acc.verification() == Verification::Rejected
    })
    .await;
    let err = stranger_user
        .refresh(&b.origin)
        .await
        .expect_err("sessions ended");
    assert!(
        err.to_string().contains("revoked") || err.to_string().contains("recognise"),
        "{err}"
    );
    let err = stranger_user
        .login(&b.origin, None, "")
        .await
        .expect_err("login refused");
    assert!(
        matches!(err, mzchat_client::ClientError::Rpc(ref s) if s.code() == Code::PermissionDenied),
        "{err}"
    );

    // A device revoked at home: B learns of it when another device of the user logs in there.
    alice
        .login(&b.origin, None, "")
        .await
        .expect("laptop session on B");
    alice
        .refresh(&b.origin)
        .await
        .expect("the laptop refreshes on B");
    let phone = other_device(&alice, "phone");
    alice
        .revoke_device(&a.origin, "laptop")
        .await
        .expect("revoke at home");
    phone.login(&b.origin, None, "").await.expect("phone on B");
    let start = Instant::now();
    loop {
        match alice.refresh(&b.origin).await {
            Err(err) => {
                assert!(
                    matches!(err, mzchat_client::ClientError::Rpc(ref s) if s.code() == Code::Unauthenticated),
                    "{err}"
                );
                break;
            }
            Ok(_) if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok(_) => panic!("the revoked laptop still refreshes on B"),
        }
    }
    let err = alice
        .login(&b.origin, None, "")
        .await
        .expect_err("a revoked device cannot log in again");
    assert!(err.to_string().contains("revoked"), "{err}");
}
