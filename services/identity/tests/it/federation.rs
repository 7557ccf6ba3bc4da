//! Identity's answers to other servers (VerifyUser, UpdateHomeServer, PropagateBan), called on
//! the application layer with the caller origin the s2s layer would have verified (the wire
//! path is covered by mzchatd's federation tests).

use ed25519_dalek::Signer;
use mzchat_identity::domain::IdentityError;
use mzchat_platform::Origin;
use mzchat_proto::{
    common::PushDelegationToken,
    federation::{PropagateBanRequest, UpdateHomeServerRequest},
    identity::{ListBanNotificationsRequest, identity_service_client::IdentityServiceClient},
    signing,
};

use crate::{
    both_backends,
    harness::{Backend, TestServer},
};

both_backends!(
    verify_user_answers_for_local_users_with_a_reused_delegation_token,
    update_home_server_applies_only_newer_signed_moves_from_the_new_home,
    a_propagated_ban_is_stored_once_and_ends_the_delegation,
    recently_seen_shadow_accounts_are_refreshed_daily,
);

fn origin(text: &str) -> Origin {
    Origin::parse(text, true).expect("origin")
}

fn move_request(client: &mzchat_client::Client, to: &str, at: i64) -> UpdateHomeServerRequest {
    let input = signing::migration_signing_input(to, at);
    UpdateHomeServerRequest {
        user_id: client.identity().user_id(),
        new_homeserver: to.to_owned(),
        migration_timestamp: at,
        migration_signature: client.identity().root.sign(&input).to_bytes().to_vec(),
    }
}

async fn verify_user_answers_for_local_users_with_a_reused_delegation_token(backend: Backend) {
    let server = TestServer::start(backend).await;
    let app = server.identity.app();
    let ada = server.client(None);
    ada.login(&server.origin, None, "").await.expect("login");
    let b = origin("http://b.example");

    let answer = app
        .verify_user_for(&b, &ada.identity().user_id())
        .await
        .expect("verify");
    assert_eq!(answer.home_server, server.origin);
    let statement = answer.push_delegation_token.expect("token");
    let info = ada.server_info(&server.origin).await.expect("server info");
    let key = ed25519_dalek::VerifyingKey::from_bytes(
        info.server_keys[0]
            .public_key
            .as_slice()
            .try_into()
            .expect("32 bytes"),
    )
    .expect("key");
    let token: PushDelegationToken =
        signing::verify(&key, signing::PUSH_DELEGATION_TOKEN, &statement).expect("signed by A");
    assert_eq!(token.audience, "http://b.example");
    assert_eq!(token.user_id, ada.identity().user_id());
    assert_eq!(token.issuer, server.origin);
    let lifetime = token.expires_at.expect("exp").seconds - token.issued_at.expect("iat").seconds;
    assert_eq!(lifetime, 30 * 86_400);
    // Asked again (a retry, or the daily refresh), A hands out the same token.
    let again = app
        .verify_user_for(&b, &ada.identity().user_id())
        .await
        .expect("verify again");
    let again: PushDelegationToken = signing::verify(
        &key,
        signing::PUSH_DELEGATION_TOKEN,
        &again.push_delegation_token.expect("token"),
    )
    .expect("signed");
    assert_eq!(again.token_id, token.token_id);

    // A user homed elsewhere, or unknown: not hosted here.
    let visitor = server.client(Some("http://c.example"));
    visitor
        .login(&server.origin, None, "")
        .await
        .expect("shadow login");
    for user_id in [
        visitor.identity().user_id(),
        server.client(None).identity().user_id(),
    ] {
        let err = app
            .verify_user_for(&b, &user_id)
            .await
            .expect_err("not hosted");
        assert!(matches!(err, IdentityError::NotFound(_)), "{err}");
    }
    server.finish().await;
}

async fn update_home_server_applies_only_newer_signed_moves_from_the_new_home(backend: Backend) {
    let server = TestServer::start(backend).await;
    let app = server.identity.app();
    let ada = server.client(None);
    ada.login(&server.origin, None, "").await.expect("login");
    let (b, c) = ("http://b.example", "http://c.example");
    let now = mzchat_client::statements::unix_now();

    // Signed for B but announced by C; a bad signature; an unknown user.
    let err = app
        .update_home_server(&origin(c), &move_request(&ada, b, now))
        .await
        .expect_err("wrong caller");
    assert!(matches!(err, IdentityError::PermissionDenied(_)), "{err}");
    let mut forged = move_request(&ada, b, now);
    forged.migration_signature[0] ^= 1;
    let err = app
        .update_home_server(&origin(b), &forged)
        .await
        .expect_err("forged");
    assert!(matches!(err, IdentityError::PermissionDenied(_)), "{err}");
    let stranger = server.client(None);
    let err = app
        .update_home_server(&origin(b), &move_request(&stranger, b, now))
        .await
        .expect_err("unknown");
    assert!(matches!(err, IdentityError::NotFound(_)), "{err}");

    app.update_home_server(&origin(b), &move_request(&ada, b, now))
        .await
        .expect("moved to B");
    let moved = |err: IdentityError| match err {
        IdentityError::HomeserverMoved {
            new_homeserver,
            proof,
        } => {
            let (timestamp, signature) = proof.expect("the move's proof comes along");
            let input = signing::migration_signing_input(&new_homeserver, timestamp);
            let signature = ed25519_dalek::Signature::from_slice(&signature).expect("64 bytes");
            use ed25519_dalek::Verifier;
            ada.identity()
                .root
                .verifying_key()
                .verify(&input, &signature)
                .expect("signed by the user");
            new_homeserver
        }
        other => panic!("expected HOMESERVER_MOVED, got {other}"),
    };
    let err = app
        .verify_user_for(&origin(c), &ada.identity().user_id())
        .await
        .expect_err("moved");
    assert_eq!(moved(err), b);
    // A replay, and an older move to C arriving late, change nothing.
    app.update_home_server(&origin(b), &move_request(&ada, b, now))
        .await
        .expect("replay is a no-op");
    app.update_home_server(&origin(c), &move_request(&ada, c, now - 10))
        .await
        .expect("older move is a no-op");
    let err = app
        .verify_user_for(&origin(c), &ada.identity().user_id())
        .await
        .expect_err("still moved");
    assert_eq!(moved(err), b);
    // A newer move to C wins.
    app.update_home_server(&origin(c), &move_request(&ada, c, now + 10))
        .await
        .expect("moved on to C");
    let err = app
        .verify_user_for(&origin(b), &ada.identity().user_id())
        .await
        .expect_err("moved again");
    assert_eq!(moved(err), c);
    let err = ada
        .login(&server.origin, None, "")
        .await
        .expect_err("login");
    assert!(
        err.to_string().contains("moved") || err.to_string().contains("c.example"),
        "{err}"
    );
    server.finish().await;
}

async fn a_propagated_ban_is_stored_once_and_ends_the_delegation(backend: Backend) {
    let server = TestServer::start(backend).await;
    let app = server.identity.app();
    let ada = server.client(None);
    ada.login(&server.origin, None, "").await.expect("login");
    let b = origin("http://b.example");
    let token_id = |answer: mzchat_proto::federation::VerifyUserResponse| {
        use prost::Message;
        let statement = answer.push_delegation_token.expect("token");
        PushDelegationToken::decode(statement.body.as_slice())
            .expect("token body")
            .token_id
    };
    let first = token_id(
        app.verify_user_for(&b, &ada.identity().user_id())
            .await
            .expect("verify"),
    );
    let ban = PropagateBanRequest {
        user_id: ada.identity().user_id(),
        guild_id: "0192f5e4-8a3b-7c2d-9e1f-123456789abc".into(),
        guild_name: "Lounge".into(),
        reason: "spam".into(),
        banned_at: Some(prost_types::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        }),
        remaining_memberships: 0,
    };
    app.receive_ban(&b, &ban).await.expect("ban");
    app.receive_ban(&b, &ban).await.expect("same ban again");
    let request = ada
        .authed(&server.origin, ListBanNotificationsRequest::default())
        .await
        .expect("token");
    let notices = IdentityServiceClient::new(ada.channel(&server.origin).expect("channel"))
        .list_ban_notifications(request)
        .await
        .expect("list")
        .into_inner()
        .notifications;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].origin, "http://b.example");
    assert_eq!(notices[0].reason, "spam");
    // No membership left on B: the token B held is revoked, and B gets no new one for now.
    let again = app
        .verify_user_for(&b, &ada.identity().user_id())
        .await
        .expect("verify");
    assert!(
        again.push_delegation_token.is_none(),
        "{first} stays revoked"
    );
    // Another server is not affected.
    let c = origin("http://c.example");
    let other = app
        .verify_user_for(&c, &ada.identity().user_id())
        .await
        .expect("verify");
    assert!(other.push_delegation_token.is_some());
    server.finish().await;
}

async fn recently_seen_shadow_accounts_are_refreshed_daily(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let server = TestServer::start(backend).await;
    let app = server.identity.app();
    let visitor = server.client(Some("http://c.example"));
    visitor
        .login(&server.origin, None, "")
        .await
        .expect("shadow login");
    // Its first VerifyUser was queued with the account.
    assert_eq!(app.refresh_shadows(100).await.expect("refresh"), 0);
    let db = server.identity.database();
    let age = |set: String| {
        let sql = format!(
            "UPDATE accounts SET {set} WHERE user_id = '{}'",
            visitor.identity().user_id()
        );
        async move { db.execute_unprepared(&sql).await.expect("age the account") }
    };
    let day_ago = mzchat_platform::db::now_millis() - 25 * 3_600_000;
    age(format!(
        "refresh_queued_at = {day_ago}, verified_at = {day_ago}"
    ))
    .await;
    assert_eq!(app.refresh_shadows(100).await.expect("refresh"), 1);
    assert_eq!(
        app.refresh_shadows(100).await.expect("refresh"),
        0,
        "queued once a day"
    );
    // Not seen for 31 days: left alone.
    let month_ago = mzchat_platform::db::now_millis() - 31 * 86_400_000;
    age(format!(
        "refresh_queued_at = {day_ago}, last_seen_at = {month_ago}"
    ))
    .await;
    assert_eq!(app.refresh_shadows(100).await.expect("refresh"), 0);
    server.finish().await;
}
