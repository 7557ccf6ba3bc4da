//! Homeserver migration and the servers that follow it.

use super::*;

/// The reference text's migration: the user moves from A to B, naming A and C (where the user
/// is known as a shadow account) as old servers; A answers later logins with HOMESERVER_MOVED,
/// and C follows the user to B and has B confirm them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_migrates_from_a_to_b_and_the_old_servers_follow() {
    let a = Homeserver::start(Backend::PostgresNats, &[]);
    let b = Homeserver::start(Backend::PostgresNats, &[]);
    let c = Homeserver::start(Backend::PostgresNats, &[]);
    // D is not among the targets: it learns of the move from A.
    let d = Homeserver::start(Backend::PostgresNats, &[]);
    let mut alice = user(&a.origin, "laptop");
    alice
        .login(&a.origin, None, "")
        .await
        .expect("alice at home");
    // Alice is a member of a guild on C, and known on D.
    let carol = user(&c.origin, "desk");
    let (guild_on_c, _, link) = guild_with_invite(&carol, &c.origin).await;
    alice
        .join_invite(&link, None)
        .await
        .expect("alice joins on C");
    for server in [&c, &d] {
        alice
            .login(&server.origin, None, "")
            .await
            .expect("alice visits");
        wait_for_account(&alice, &server.origin, Duration::from_secs(30), |acc| {
            acc.verification() == Verification::Verified && acc.home_server == a.origin
        })
        .await;
    }

    let targets = vec![a.origin.clone(), c.origin.clone()];
    let moved = alice
        .migrate(&b.origin, &targets, "")
        .await
        .expect("migrate to B");
    let account = moved.account.expect("account");
    assert_eq!(account.kind(), AccountKind::Local);
    assert_eq!(account.home_server, b.origin);

    // A learns of the move and sends later logins to B.
    let start = Instant::now();
    let moved_to = loop {
        let err = alice.login(&a.origin, None, "").await.err();
        if let Some(mzchat_client::ClientError::Rpc(status)) = &err
            && status.code() == Code::FailedPrecondition
        {
            use tonic_types::StatusExt;
            let info = status.get_details_error_info().expect("error info");
            assert_eq!(info.reason, "HOMESERVER_MOVED");
            break info
                .metadata
                .get("new_homeserver")
                .cloned()
                .unwrap_or_default();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "A never learned of the move: {err:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(moved_to, b.origin);

    // C follows the user to B and has B confirm them; a login there now names B.
    // (Read with the session C issued before the move.)
    wait_for_account(&alice, &c.origin, Duration::from_secs(30), |acc| {
        acc.home_server == b.origin && acc.verification() == Verification::Verified
    })
    .await;
    alice
        .login(&c.origin, None, "")
        .await
        .expect("login on C with the new home");

    // D still knows A as the home: the first login with a certificate naming B is turned away
    // while D asks A, which answers with the move and its proof; D follows to B.
    let start = Instant::now();
    loop {
        match alice.login(&d.origin, None, "").await {
            Ok(response) => {
                let account = response.account.expect("account");
                assert_eq!(account.home_server, b.origin);
                break;
            }
            Err(mzchat_client::ClientError::Rpc(status))
                if status.code() == Code::FailedPrecondition
                    && start.elapsed() < Duration::from_secs(30) =>
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(err) => panic!("D never followed the move: {err}"),
        }
    }
    wait_for_account(&alice, &d.origin, Duration::from_secs(30), |acc| {
        acc.home_server == b.origin && acc.verification() == Verification::Verified
    })
    .await;

    // C bans alice and reports it to the home it recorded at her join (A); A points to B, and
    // the notice reaches her there.
    let ban = mzchat_proto::guild::BanMemberRequest {
        guild_id: guild_on_c,
        user_id: alice.identity().user_id(),
        reason: "moved and misbehaved".into(),
        propagate_to_home_server: true,
    };
    let request = carol.authed(&c.origin, ban).await.expect("token");
    GuildServiceClient::new(carol.channel(&c.origin).expect("channel"))
        .ban_member(request)
        .await
        .expect("ban");
    let mut identity_b =
        mzchat_proto::identity::identity_service_client::IdentityServiceClient::new(
            alice.channel(&b.origin).expect("channel"),
        );
    let start = Instant::now();
    loop {
        let request = alice
            .authed(
                &b.origin,
                mzchat_proto::identity::ListBanNotificationsRequest::default(),
            )
            .await
            .expect("token");
        let notices = identity_b
            .list_ban_notifications(request)
            .await
            .expect("notices")
            .into_inner()
            .notifications;
        if let Some(notice) = notices.first() {
            assert_eq!(notice.origin, c.origin);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the ban never reached B"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A proof older than the migration applied moves nothing.
    let mut sessions = mzchat_proto::identity::session_service_client::SessionServiceClient::new(
        alice.channel(&b.origin).expect("channel"),
    );
    let mut replay = alice.login_request(&b.origin, None, "").expect("request");
    replay.migration_proof = Some(mzchat_client::statements::migration_proof(
        alice.identity(),
        &b.origin,
        &targets,
        // Older than the migration just applied (proofs carry whole seconds).
        mzchat_client::statements::unix_now() - 60,
    ));
    let status = sessions
        .login(replay)
        .await
        .expect_err("an older proof moves nothing");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    for server in [a, b, c, d] {
        server.remove().await;
    }
}
