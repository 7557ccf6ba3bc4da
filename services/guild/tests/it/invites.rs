use mzchat_proto::guild::{
    BanMemberRequest, CreateInviteRequest, GetGuildRequest, Invite, JoinInviteRequest,
    ListInvitesRequest, ListMembersRequest, PreviewInviteRequest, RevokeInviteRequest,
    UnbanMemberRequest,
};
use tonic::Code;

use crate::{
    both_backends,
    guilds::create_guild,
    harness::{Backend, Homeserver, User},
};

pub async fn invite(owner: &User, guild_id: &str, max_uses: u32) -> Invite {
    let channel_id = owner
        .guilds()
        .list_channels(
            owner
                .req(mzchat_proto::guild::ListChannelsRequest {
                    guild_id: guild_id.into(),
                })
                .await,
        )
        .await
        .expect("channels")
        .into_inner()
        .channels[0]
        .id
        .clone();
    owner
        .guilds()
        .create_invite(
            owner
                .req(CreateInviteRequest {
                    guild_id: guild_id.into(),
                    channel_id,
                    max_age: None,
                    max_uses,
                })
                .await,
        )
        .await
        .expect("create invite")
        .into_inner()
        .invite
        .expect("invite")
}

/// Joins with an invite token and switches to the returned token.
pub async fn join(user: &User, token: &str) -> Result<(), tonic::Status> {
    let joined = user
        .guilds()
        .join_invite(
            user.req(JoinInviteRequest {
                token: token.into(),
                login: None,
            })
            .await,
        )
        .await?
        .into_inner();
    user.adopt(&joined.access_token, joined.access_token_expires_at);
    Ok(())
}

both_backends!(
    an_invite_previews_and_joins_once_per_user,
    a_banned_user_cannot_come_back_by_any_invite,
    dead_invites_are_not_found,
    concurrent_joins_never_exceed_max_uses,
);

async fn an_invite_previews_and_joins_once_per_user(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let ada = server.user().await;
    let guild = create_guild(&ada, "salon").await;
    let inv = invite(&ada, &guild.id, 0).await;
    assert_eq!(inv.token.len(), 10);
    assert_eq!(
        inv.link,
        format!(
            "{}/channels/{}/{}?token={}",
            server.origin, guild.id, inv.channel_id, inv.token
        )
    );

    let grace = server.user().await;
    let preview = grace
        .guilds()
        .preview_invite(PreviewInviteRequest {
            token: inv.token.clone(),
        })
        .await
        .expect("preview without a session")
        .into_inner();
    assert_eq!(
        (
            preview.guild_name.as_str(),
            preview.channel_name.as_str(),
            preview.member_count
        ),
        ("salon", "general", 1)
    );

    join(&grace, &inv.token).await.expect("join");
    let seen = grace
        .guilds()
        .get_guild(
            grace
                .req(GetGuildRequest {
                    guild_id: guild.id.clone(),
                })
                .await,
        )
        .await;
    assert_eq!(
        seen.expect("member sees the guild")
            .into_inner()
            .guild
            .expect("guild")
            .member_count,
        2
    );
    join(&grace, &inv.token)
        .await
        .expect("joining again is fine");
    let invites = ada
        .guilds()
        .list_invites(
            ada.req(ListInvitesRequest {
                guild_id: guild.id.clone(),
                ..Default::default()
            })
            .await,
        )
        .await
        .expect("list invites")
        .into_inner()
        .invites;
    assert_eq!(invites[0].uses, 1, "a member joining again uses nothing");
    let members = ada
        .guilds()
        .list_members(
            ada.req(ListMembersRequest {
                guild_id: guild.id.clone(),
                page_size: 1,
                page_token: String::new(),
            })
            .await,
        )
        .await
        .expect("members")
        .into_inner();
    assert_eq!(members.members.len(), 1);
    let rest = ada
        .guilds()
        .list_members(
            ada.req(ListMembersRequest {
                guild_id: guild.id.clone(),
                page_size: 1,
                page_token: members.next_page_token,
            })
            .await,
        )
        .await
        .expect("next page")
        .into_inner();
    assert_eq!(rest.members.len(), 1);
    assert_ne!(rest.members[0].user_id, members.members[0].user_id);
    server.finish().await;
}

async fn a_banned_user_cannot_come_back_by_any_invite(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let ada = server.user().await;
    let guild = create_guild(&ada, "club").await;
    let grace = server.user().await;
    join(&grace, &invite(&ada, &guild.id, 0).await.token)
        .await
        .expect("join");
    ada.guilds()
        .ban_member(
            ada.req(BanMemberRequest {
                guild_id: guild.id.clone(),
                user_id: grace.id(),
                reason: "spam".into(),
                propagate_to_home_server: false,
            })
            .await,
        )
        .await
        .expect("ban");
    ada.refresh().await;
    let fresh = invite(&ada, &guild.id, 0).await;
    let refused = join(&grace, &fresh.token).await.expect_err("banned");
    assert_eq!(refused.code(), Code::PermissionDenied);
    grace.refresh().await;
    let status = grace
        .guilds()
        .get_guild(
            grace
                .req(GetGuildRequest {
                    guild_id: guild.id.clone(),
                })
                .await,
        )
        .await
        .expect_err("out");
    assert_eq!(status.code(), Code::PermissionDenied);

    ada.refresh().await;
    ada.guilds()
        .unban_member(
            ada.req(UnbanMemberRequest {
                guild_id: guild.id.clone(),
                user_id: grace.id(),
            })
            .await,
        )
        .await
        .expect("unban");
    join(&grace, &fresh.token).await.expect("welcome back");
    server.finish().await;
}

async fn dead_invites_are_not_found(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let ada = server.user().await;
    let guild = create_guild(&ada, "closed").await;
    let inv = invite(&ada, &guild.id, 1).await;
    let grace = server.user().await;
    join(&grace, &inv.token).await.expect("the one use");
    let late = server.user().await;
    assert_eq!(
        join(&late, &inv.token).await.expect_err("used up").code(),
        Code::NotFound
    );

    // A member joining again with an invite that has since died still succeeds.
    join(&grace, &inv.token)
        .await
        .expect("already a member: idempotent");
    let revoked = invite(&ada, &guild.id, 0).await;
    ada.guilds()
        .revoke_invite(
            ada.req(RevokeInviteRequest {
                guild_id: guild.id.clone(),
                token: revoked.token.clone(),
            })
            .await,
        )
        .await
        .expect("revoke");
    assert_eq!(
        join(&late, &revoked.token)
            .await
            .expect_err("revoked")
            .code(),
        Code::NotFound
    );
    let status = late
        .guilds()
        .preview_invite(PreviewInviteRequest {
            token: revoked.token,
        })
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(
        join(&late, "NoSuchTokn").await.expect_err("unknown").code(),
        Code::NotFound
    );
    assert_eq!(
        join(&late, "bad token!")
            .await
            .expect_err("malformed")
            .code(),
        Code::InvalidArgument
    );
    server.finish().await;
}

async fn concurrent_joins_never_exceed_max_uses(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let ada = server.user().await;
    let guild = create_guild(&ada, "popular").await;
    let inv = invite(&ada, &guild.id, 5).await;
    let mut users = Vec::new();
    for _ in 0..20 {
        users.push(server.user().await);
    }
    let attempts = users.iter().map(|u| join(u, &inv.token));
    let results = futures::future::join_all(attempts).await;
    let joined = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        joined,
        5,
        "{:?}",
        results
            .iter()
            .map(|r| r.as_ref().err().map(|s| s.code()))
            .collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|s| s.code() == Code::NotFound)
    );
    let guild = ada
        .guilds()
        .get_guild(ada.req(GetGuildRequest { guild_id: guild.id }).await)
        .await
        .expect("guild");
    assert_eq!(guild.into_inner().guild.expect("guild").member_count, 6);
    server.finish().await;
}

both_backends!(a_user_of_another_server_joins_in_one_call);

async fn a_user_of_another_server_joins_in_one_call(backend: Backend) {
    use mzchat_client::{Client, KeyStore, LocalIdentity};
    use mzchat_proto::{common::ProfileHint, guild::JoinInviteLogin};

    let server = Homeserver::start(backend).await;
    let ada = server.user().await;
    let guild = create_guild(&ada, "federated").await;
    let inv = invite(&ada, &guild.id, 0).await;
    // Keys homed on another server; no session here yet.
    let store = KeyStore::new(std::env::temp_dir().join(crate::harness::unique("mzchat-remote-")));
    store
        .save_identity(&LocalIdentity::generate("http://home.example:7600", "phone").expect("keys"))
        .expect("save");
    let remote = Client::open(store).expect("client");
    let login_for = |origin: &str| {
        let request = remote
            .login_request(
                origin,
                Some(ProfileHint {
                    display_name: "Grace".into(),
                    ..Default::default()
                }),
                "",
            )
            .expect("request");
        JoinInviteLogin {
            user_id: request.user_id,
            certificate: request.certificate,
            proof: request.proof,
            profile_hint: request.profile_hint,
        }
    };
    let mut guilds = mzchat_proto::guild::guild_service_client::GuildServiceClient::new(
        remote.channel(&server.origin).expect("channel"),
    );
    // A proof addressed to another server is refused.
    let status = guilds
        .join_invite(JoinInviteRequest {
            token: inv.token.clone(),
            login: Some(login_for("https://elsewhere.example")),
        })
        .await
        .expect_err("wrong audience");
    assert_eq!(status.code(), Code::Unauthenticated);
    let joined = guilds
        .join_invite(JoinInviteRequest {
            token: inv.token.clone(),
            login: Some(login_for(&server.origin)),
        })
        .await
        .expect("join with login")
        .into_inner();
    assert!(!joined.access_token.is_empty() && !joined.refresh_token.is_empty());
    let mut request = tonic::Request::new(GetGuildRequest {
        guild_id: guild.id.clone(),
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", joined.access_token)
            .parse()
            .expect("metadata"),
    );
    let seen = guilds
        .get_guild(request)
        .await
        .expect("the new member uses the guild at once");
    assert_eq!(seen.into_inner().guild.expect("guild").member_count, 2);
    server.finish().await;
}
