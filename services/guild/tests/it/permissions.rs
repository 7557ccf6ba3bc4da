use mzchat_proto::guild::{
    AssignRoleRequest, CreateChannelRequest, CreateRoleRequest, GetGuildRequest, KickMemberRequest,
    ListInvitesRequest, UpdateRoleRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::{
    both_backends,
    guilds::create_guild,
    harness::{Backend, Homeserver, User},
    invites::{invite, join},
};

const MANAGE_CHANNELS: u64 = 1 << 2;
const MANAGE_ROLES: u64 = 1 << 3;
const KICK_MEMBERS: u64 = 1 << 5;
const ADMINISTRATOR: u64 = 1;

async fn role(owner: &User, guild_id: &str, name: &str, permissions: u64, weight: u32) -> String {
    let id = owner
        .guilds()
        .create_role(
            owner
                .req(CreateRoleRequest {
                    guild_id: guild_id.into(),
                    name: name.into(),
                    permissions,
                    weight,
                    color: 0,
                })
                .await,
        )
        .await
        .expect("create role")
        .into_inner()
        .role
        .expect("role")
        .id;
    // Every role change moves the guild's permission version, the owner's token included.
    owner.refresh().await;
    id
}

async fn assign(owner: &User, guild_id: &str, user: &User, role_id: &str) {
    owner
        .guilds()
        .assign_role(
            owner
                .req(AssignRoleRequest {
                    guild_id: guild_id.into(),
                    user_id: user.id(),
                    role_id: role_id.into(),
                })
                .await,
        )
        .await
        .expect("assign");
    owner.refresh().await;
}

fn channel(guild_id: &str) -> CreateChannelRequest {
    CreateChannelRequest {
        guild_id: guild_id.into(),
        name: "new".into(),
        ..Default::default()
    }
}

fn kick(guild_id: &str, user: &User) -> KickMemberRequest {
    KickMemberRequest {
        guild_id: guild_id.into(),
        user_id: user.id(),
    }
}

both_backends!(
    each_call_answers_by_permission_and_weight,
    a_stale_token_is_refused_until_refreshed
);

async fn each_call_answers_by_permission_and_weight(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let owner = server.user().await;
    let guild = create_guild(&owner, "matrix").await;
    let g = guild.id.as_str();
    let token = invite(&owner, g, 0).await.token;
    let (moderator, peer, plain, stranger) = (
        server.user().await,
        server.user().await,
        server.user().await,
        server.user().await,
    );
    for member in [&moderator, &peer, &plain] {
        join(member, &token).await.expect("join");
    }
    let moderation = role(&owner, g, "Mod", KICK_MEMBERS | MANAGE_CHANNELS, 10).await;
    let managers = role(&owner, g, "Managers", MANAGE_ROLES | KICK_MEMBERS, 50).await;
    assign(&owner, g, &moderator, &moderation).await;
    assign(&owner, g, &peer, &moderation).await;
    for user in [&moderator, &peer, &plain] {
        user.refresh().await;
    }

    // Not a member at all.
    let status = stranger
        .guilds()
        .get_guild(stranger.req(GetGuildRequest { guild_id: g.into() }).await)
        .await
        .expect_err("stranger");
    assert_eq!(status.code(), Code::PermissionDenied);
    // A member without the bit.
    assert_eq!(
        plain
            .guilds()
            .create_channel(plain.req(channel(g)).await)
            .await
            .expect_err("no bit")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        plain
            .guilds()
            .kick_member(plain.req(kick(g, &peer)).await)
            .await
            .expect_err("no bit")
            .code(),
        Code::PermissionDenied
    );
    let listing = ListInvitesRequest {
        guild_id: g.into(),
        ..Default::default()
    };
    assert_eq!(
        plain
            .guilds()
            .list_invites(plain.req(listing.clone()).await)
            .await
            .expect_err("no bit")
            .code(),
        Code::PermissionDenied
    );
    invite(&plain, g, 0).await; // @everyone may invite
    // A member with the bit.
    moderator
        .guilds()
        .create_channel(moderator.req(channel(g)).await)
        .await
        .expect("moderator creates channels");
    // Weights: an equal weight is off limits, a lower one is not.
    let status = moderator
        .guilds()
        .kick_member(moderator.req(kick(g, &peer)).await)
        .await
        .expect_err("equal weight");
    assert_eq!(status.code(), Code::PermissionDenied);
    moderator
        .guilds()
        .kick_member(moderator.req(kick(g, &plain)).await)
        .await
        .expect("kicks a plain member");
    // MANAGE_ROLES cannot mint what it does not hold, nor reach its own weight.
    let manager = moderator; // reuse a member for the role manager
    owner.refresh().await;
    assign(&owner, g, &manager, &managers).await;
    manager.refresh().await;
    let make = |permissions, weight| CreateRoleRequest {
        guild_id: g.into(),
        name: "x".into(),
        permissions,
        weight,
        color: 0,
    };
    let status = manager
        .guilds()
        .create_role(manager.req(make(ADMINISTRATOR, 5)).await)
        .await
        .expect_err("admin");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = manager
        .guilds()
        .create_role(manager.req(make(KICK_MEMBERS, 50)).await)
        .await
        .expect_err("own weight");
    assert_eq!(status.code(), Code::PermissionDenied);
    manager
        .guilds()
        .create_role(manager.req(make(KICK_MEMBERS, 20)).await)
        .await
        .expect("a lower role");
    // The owner passes every check.
    owner.refresh().await;
    owner
        .guilds()
        .kick_member(owner.req(kick(g, &peer)).await)
        .await
        .expect("owner kicks anyone");
    server.finish().await;
}

async fn a_stale_token_is_refused_until_refreshed(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let owner = server.user().await;
    let guild = create_guild(&owner, "versions").await;
    let member = server.user().await;
    join(&member, &invite(&owner, &guild.id, 0).await.token)
        .await
        .expect("join");
    let channels = role(&owner, &guild.id, "Builders", MANAGE_CHANNELS, 5).await;
    assign(&owner, &guild.id, &member, &channels).await;

    let status = member
        .guilds()
        .create_channel(member.req(channel(&guild.id)).await)
        .await
        .expect_err("stale");
    assert_eq!(status.code(), Code::Unauthenticated);
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.reason, "PERMISSIONS_STALE");
    assert_eq!(info.metadata.get("guild_id"), Some(&guild.id));

    member.refresh().await;
    member
        .guilds()
        .create_channel(member.req(channel(&guild.id)).await)
        .await
        .expect("after refresh, with the new role");
    // Editing a role is a change too.
    owner.refresh().await;
    owner
        .guilds()
        .update_role(
            owner
                .req(UpdateRoleRequest {
                    guild_id: guild.id.clone(),
                    role_id: channels,
                    permissions: Some(0),
                    ..Default::default()
                })
                .await,
        )
        .await
        .expect("update role");
    let status = member
        .guilds()
        .create_channel(member.req(channel(&guild.id)).await)
        .await
        .expect_err("stale again");
    assert_eq!(status.code(), Code::Unauthenticated);
    member.refresh().await;
    let status = member
        .guilds()
        .create_channel(member.req(channel(&guild.id)).await)
        .await
        .expect_err("bit gone");
    assert_eq!(status.code(), Code::PermissionDenied);
    server.finish().await;
}
