//! The optimistic join with the home server down, verification, profiles, bans.

use super::*;

both_backends!(a_user_joins_and_talks_while_the_home_server_is_down);

/// The reference text's handshake: join on B with A stopped, talk at once; once A is back,
/// B's shadow account becomes verified and profile sync, unlink and relink behave.
async fn a_user_joins_and_talks_while_the_home_server_is_down(backend: Backend) {
    let mut a = Homeserver::start(backend, &[]);
    let b = Homeserver::start(backend, &[]);
    let alice = user(&a.origin, "laptop");
    alice
        .login(&a.origin, None, "")
        .await
        .expect("alice registers at home");
    let owner = user(&b.origin, "desk");
    let (guild_id, channel_id, link) = guild_with_invite(&owner, &b.origin).await;
    a.stop();

    let (host, joined) = alice
        .join_invite(&link, None)
        .await
        .expect("optimistic join");
    assert_eq!(host, b.origin);
    assert_eq!(joined.guild.expect("guild").id, guild_id);
    send(
        &alice,
        &b.origin,
        &guild_id,
        &channel_id,
        "hello from a user homed on A",
    )
    .await;
    assert_eq!(
        history(&owner, &b.origin, &guild_id, &channel_id).await,
        vec!["hello from a user homed on A"]
    );
    send(&owner, &b.origin, &guild_id, &channel_id, "welcome").await;
    assert_eq!(
        history(&alice, &b.origin, &guild_id, &channel_id).await,
        vec!["hello from a user homed on A", "welcome"]
    );
    let account = alice.whoami(&b.origin).await.expect("account on B");
    assert_eq!(account.kind(), AccountKind::Shadow);
    assert_eq!(account.verification(), Verification::Pending);

    // A comes back; B's federation-sync gets through on its next attempt. The answer reaches
    // B's other services as an event carrying A's push delegation token for B.
    let results = match &b.bus_prefix {
        Some(prefix) => {
            let nats = async_nats::connect(nats_url()).await.expect("nats");
            let subject = format!("{prefix}.federation.v1.result.user_verified");
            Some(nats.subscribe(subject).await.expect("subscribe"))
        }
        None => None,
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.resume();
    let took = wait_for_account(&alice, &b.origin, Duration::from_secs(60), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;
    eprintln!("shadow account verified {took:?} after the home server came back");

    // Unlinked, B keeps its own profile through a refresh; relinked, it follows A again.
    let sync = |synced: bool, name: &str| mzchat_proto::identity::SetProfileSyncRequest {
        synced,
        local_profile: Some(mzchat_proto::identity::UpdateProfileRequest {
            display_name: Some(name.to_owned()),
            ..Default::default()
        }),
    };
    let mut identity_b =
        mzchat_proto::identity::identity_service_client::IdentityServiceClient::new(
            alice.channel(&b.origin).expect("channel"),
        );
    let request = alice
        .authed(&b.origin, sync(false, "Alice on B"))
        .await
        .expect("token");
    identity_b.set_profile_sync(request).await.expect("unlink");
    let mut identity_a =
        mzchat_proto::identity::identity_service_client::IdentityServiceClient::new(
            alice.channel(&a.origin).expect("channel"),
        );
    let rename = mzchat_proto::identity::UpdateProfileRequest {
        display_name: Some("Alice at home".into()),
        ..Default::default()
    };
    let request = alice.authed(&a.origin, rename).await.expect("token");
    identity_a
        .update_profile(request)
        .await
        .expect("rename at home");
    // A new device logging in on B makes B ask A again at once.
    let phone = other_device(&alice, "phone");
    phone.login(&b.origin, None, "").await.expect("phone on B");
    let home_name = |acc: &mzchat_proto::identity::Account| {
        acc.profile
            .as_ref()
            .map(|p| p.display_name.clone())
            .unwrap_or_default()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let account = alice.whoami(&b.origin).await.expect("account");
    assert_eq!(
        home_name(&account),
        "Alice on B",
        "unlinked profile survives the refresh"
    );
    let request = alice
        .authed(&b.origin, sync(true, ""))
        .await
        .expect("token");
    identity_b.set_profile_sync(request).await.expect("relink");
    wait_for_account(&alice, &b.origin, Duration::from_secs(30), |acc| {
        home_name(acc) == "Alice at home"
    })
    .await;
    // B's member list shows the home server's profile too.
    let start = Instant::now();
    loop {
        let request = owner
            .authed(
                &b.origin,
                mzchat_proto::guild::GetMemberRequest {
                    guild_id: guild_id.clone(),
                    user_id: alice.identity().user_id(),
                },
            )
            .await
            .expect("token");
        let member = GuildServiceClient::new(owner.channel(&b.origin).expect("channel"))
            .get_member(request)
            .await
            .expect("member")
            .into_inner()
            .member
            .expect("member");
        let name = member.profile.map(|p| p.display_name).unwrap_or_default();
        if name == "Alice at home" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "member profile on B: {name:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(results) = results {
        delegation_token_arrived(results, &alice, &a.origin, &b.origin).await;
    }

    // B bans alice and reports it to A, where alice can read it.
    let ban = mzchat_proto::guild::BanMemberRequest {
        guild_id: guild_id.clone(),
        user_id: alice.identity().user_id(),
        reason: "spam".into(),
        propagate_to_home_server: true,
    };
    let request = owner.authed(&b.origin, ban).await.expect("token");
    GuildServiceClient::new(owner.channel(&b.origin).expect("channel"))
        .ban_member(request)
        .await
        .expect("ban with propagation");
    let start = Instant::now();
    let notices = loop {
        let request = alice
            .authed(
                &a.origin,
                mzchat_proto::identity::ListBanNotificationsRequest::default(),
            )
            .await
            .expect("token");
        let notices = identity_a
            .list_ban_notifications(request)
            .await
            .expect("ban notifications")
            .into_inner()
            .notifications;
        if !notices.is_empty() || start.elapsed() > Duration::from_secs(30) {
            break notices;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(notices.len(), 1, "the ban reached A once: {notices:?}");
    assert_eq!(notices[0].origin, b.origin);
    assert_eq!(notices[0].guild_name, "Lounge");
    assert_eq!(notices[0].reason, "spam");
    a.remove().await;
    b.remove().await;
}

/// A `user_verified` result on B's bus carries a delegation token signed by A's server key,
/// for B.
async fn delegation_token_arrived(
    mut results: async_nats::Subscriber,
    user: &Client,
    home: &str,
    audience: &str,
) {
    use futures::StreamExt;
    use mzchat_proto::{common::PushDelegationToken, federation::federation_result, signing};
    use prost::Message;
    let message = tokio::time::timeout(Duration::from_secs(30), results.next())
        .await
        .expect("a user_verified result within 30 s")
        .expect("subscription open");
    let result = mzchat_proto::federation::FederationResult::decode(message.payload.as_ref())
        .expect("result");
    let Some(federation_result::Result::UserVerified(verified)) = result.result else {
        panic!("not user_verified: {result:?}");
    };
    let statement = verified.delegation_token.expect("delegation token");
    let info = user.server_info(home).await.expect("A's keys");
    let token = info
        .server_keys
        .iter()
        .find_map(|k| {
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(k.public_key.as_slice().try_into().ok()?)
                    .ok()?;
            signing::verify::<PushDelegationToken>(&key, signing::PUSH_DELEGATION_TOKEN, &statement)
                .ok()
        })
        .expect("token signed by A's server key");
    assert_eq!(token.audience, audience);
    assert_eq!(token.issuer, home);
    assert_eq!(token.user_id, user.identity().user_id());
}
