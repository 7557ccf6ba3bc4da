use mzchat_client::Client;
use mzchat_proto::{
    common::{GuildRef, PresencePreference, ProfileHint},
    identity::{
        GetAccountRequest, GetGuildOrderRequest, GetProfileRequest, ListDevicesRequest,
        SetGuildOrderRequest, SetPresencePreferenceRequest, SetProfileSyncRequest,
        UpdateProfileRequest, identity_service_client::IdentityServiceClient,
    },
};
use tonic::{Code, transport::Channel};

use crate::{
    both_backends,
    harness::{Backend, TestServer},
};

both_backends!(
    profiles_update_and_show_to_others,
    settings_round_trip_and_reject_bad_input,
    shadow_profiles_follow_home_until_unlinked,
    calls_without_a_session_are_unauthenticated,
);

fn api(client: &Client, origin: &str) -> IdentityServiceClient<Channel> {
    IdentityServiceClient::new(client.channel(origin).expect("channel"))
}

async fn profiles_update_and_show_to_others(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ada, bob) = (server.client(None), server.client(None));
    ada.login(&server.origin, None, "").await.expect("login");
    bob.login(&server.origin, None, "").await.expect("login");
    // Avatar files are checked with the media service, which this test server lacks (the
    // mzchatd media tests set one).
    let file_id = "0192f5e4-8a3b-7c2d-9e1f-123456789abc.png";
    let request = ada
        .authed(
            &server.origin,
            UpdateProfileRequest {
                avatar_file_id: Some(file_id.into()),
                ..Default::default()
            },
        )
        .await
        .expect("token");
    let status = api(&ada, &server.origin)
        .update_profile(request)
        .await
        .expect_err("no media service here");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let request = ada
        .authed(
            &server.origin,
            UpdateProfileRequest {
                display_name: Some("  Ada Lovelace ".into()),
                bio: Some("analyst".into()),
                avatar_file_id: None,
                avatar_color: Some(0x336699),
            },
        )
        .await
        .expect("token");
    let profile = api(&ada, &server.origin)
        .update_profile(request)
        .await
        .expect("update")
        .into_inner()
        .profile
        .expect("profile");
    assert_eq!(profile.display_name, "Ada Lovelace");
    assert_eq!(profile.avatar_color, 0x336699);

    let request = bob
        .authed(
            &server.origin,
            GetProfileRequest {
                user_id: ada.identity().user_id(),
            },
        )
        .await
        .expect("token");
    let seen = api(&bob, &server.origin)
        .get_profile(request)
        .await
        .expect("get")
        .into_inner();
    assert_eq!(seen.profile.expect("profile").bio, "analyst");
    assert_eq!(seen.home_server, server.origin);

    let request = bob
        .authed(
            &server.origin,
            GetProfileRequest {
                user_id: "x".repeat(43),
            },
        )
        .await
        .expect("token");
    let status = api(&bob, &server.origin)
        .get_profile(request)
        .await
        .expect_err("unknown");
    assert!(
        matches!(status.code(), Code::InvalidArgument | Code::NotFound),
        "{status:?}"
    );
    server.finish().await;
}

async fn settings_round_trip_and_reject_bad_input(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(None);
    client.login(&server.origin, None, "").await.expect("login");
    let mut identity = api(&client, &server.origin);
    let order = vec![
        GuildRef {
            origin: "https://b.example".into(),
            guild_id: "0192f5e4-8a3b-7c2d-9e1f-123456789abc".into(),
        },
        GuildRef {
            origin: server.origin.clone(),
            guild_id: "0192f5e4-8a3b-7c2d-9e1f-123456789abd".into(),
        },
    ];
    let request = client
        .authed(
            &server.origin,
            SetGuildOrderRequest {
                guilds: order.clone(),
            },
        )
        .await
        .expect("token");
    identity.set_guild_order(request).await.expect("set order");
    let request = client
        .authed(&server.origin, GetGuildOrderRequest {})
        .await
        .expect("token");
    assert_eq!(
        identity
            .get_guild_order(request)
            .await
            .expect("get")
            .into_inner()
            .guilds,
        order
    );

    let duplicate = vec![order[0].clone(), order[0].clone()];
    let request = client
        .authed(&server.origin, SetGuildOrderRequest { guilds: duplicate })
        .await
        .expect("token");
    assert_eq!(
        identity
            .set_guild_order(request)
            .await
            .expect_err("dup")
            .code(),
        Code::InvalidArgument
    );

    let request = client
        .authed(
            &server.origin,
            SetPresencePreferenceRequest {
                presence_preference: PresencePreference::DoNotDisturb as i32,
            },
        )
        .await
        .expect("token");
    identity
        .set_presence_preference(request)
        .await
        .expect("presence");
    let request = client
        .authed(&server.origin, GetAccountRequest {})
        .await
        .expect("token");
    let account = identity
        .get_account(request)
        .await
        .expect("account")
        .into_inner()
        .account
        .expect("account");
    assert_eq!(
        account.profile.expect("profile").presence_preference,
        PresencePreference::DoNotDisturb as i32
    );
    let request = client
        .authed(
            &server.origin,
            SetPresencePreferenceRequest {
                presence_preference: 99,
            },
        )
        .await
        .expect("token");
    assert_eq!(
        identity
            .set_presence_preference(request)
            .await
            .expect_err("bad")
            .code(),
        Code::InvalidArgument
    );

    for bad in [
        UpdateProfileRequest {
            display_name: Some(" ".into()),
            ..Default::default()
        },
        UpdateProfileRequest {
            bio: Some("b".repeat(513)),
            ..Default::default()
        },
        UpdateProfileRequest {
            avatar_file_id: Some("../../etc/passwd".into()),
            ..Default::default()
        },
        UpdateProfileRequest {
            avatar_color: Some(0x1000000),
            ..Default::default()
        },
    ] {
        let request = client.authed(&server.origin, bad).await.expect("token");
        assert_eq!(
            identity
                .update_profile(request)
                .await
                .expect_err("bad")
                .code(),
            Code::InvalidArgument
        );
    }
    let request = client
        .authed(&server.origin, ListDevicesRequest {})
        .await
        .expect("token");
    let devices = identity
        .list_devices(request)
        .await
        .expect("devices")
        .into_inner()
        .devices;
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].device_id, "laptop");
    assert!(devices[0].revoked_at.is_none());
    server.finish().await;
}

async fn shadow_profiles_follow_home_until_unlinked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(Some("http://home.example:7600"));
    let hint = ProfileHint {
        display_name: "Grace".into(),
        ..Default::default()
    };
    client
        .login(&server.origin, Some(hint), "")
        .await
        .expect("login");
    let mut identity = api(&client, &server.origin);

    let request = client
        .authed(
            &server.origin,
            UpdateProfileRequest {
                display_name: Some("Local Grace".into()),
                ..Default::default()
            },
        )
        .await
        .expect("token");
    let status = identity
        .update_profile(request)
        .await
        .expect_err("synced profile");
    assert_eq!(status.code(), Code::FailedPrecondition);

    let unlink = SetProfileSyncRequest {
        synced: false,
        local_profile: Some(UpdateProfileRequest {
            display_name: Some("Local Grace".into()),
            ..Default::default()
        }),
    };
    let request = client.authed(&server.origin, unlink).await.expect("token");
    let account = identity
        .set_profile_sync(request)
        .await
        .expect("unlink")
        .into_inner()
        .account
        .expect("account");
    assert!(!account.is_profile_synced);
    assert_eq!(
        account.profile.expect("profile").display_name,
        "Local Grace"
    );

    let request = client
        .authed(
            &server.origin,
            SetProfileSyncRequest {
                synced: true,
                local_profile: None,
            },
        )
        .await
        .expect("token");
    let account = identity
        .set_profile_sync(request)
        .await
        .expect("relink")
        .into_inner()
        .account
        .expect("account");
    assert!(account.is_profile_synced);
    assert_eq!(
        account.profile.expect("profile").display_name,
        "Grace",
        "home profile restored"
    );
    server.finish().await;
}

async fn calls_without_a_session_are_unauthenticated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.client(None);
    let mut identity = api(&client, &server.origin);
    let status = identity
        .get_account(GetAccountRequest {})
        .await
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut request = tonic::Request::new(GetAccountRequest {});
    request
        .metadata_mut()
        .insert("authorization", "Bearer a.b.c".parse().expect("metadata"));
    assert_eq!(
        identity
            .get_account(request)
            .await
            .expect_err("garbage token")
            .code(),
        Code::Unauthenticated
    );

    // A token of another server is refused.
    let other = TestServer::start(backend).await;
    let foreign = server.client(Some(&other.origin));
    foreign
        .login(&other.origin, None, "")
        .await
        .expect("login elsewhere");
    let token = foreign
        .session(&other.origin)
        .expect("session")
        .access_token;
    let mut request = tonic::Request::new(GetAccountRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    assert_eq!(
        identity
            .get_account(request)
            .await
            .expect_err("foreign token")
            .code(),
        Code::Unauthenticated
    );
    other.finish().await;
    server.finish().await;
}
