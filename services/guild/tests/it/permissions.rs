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
    let lower = manager
        .guilds()
        .create_role(manager.req(make(KICK_MEMBERS, 20)).await)
        .await
        .expect("a lower role")
        .into_inner()
        .role
        .expect("role")
        .id;
    // A lower role still cannot be handed to, or taken from, someone who outranks you.
    manager.refresh().await;
    let status = manager
        .guilds()
        .assign_role(
            manager
                .req(AssignRoleRequest {
                    guild_id: g.into(),
                    user_id: owner.id(),
                    role_id: lower,
                })
                .await,
        )
        .await
        .expect_err("the owner outranks the manager");
    assert_eq!(status.code(), Code::PermissionDenied);
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

both_backends!(every_guild_call_answers_by_role);

/// `Ok(())` or the status code of a call's answer.
fn outcome<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Result<(), Code> {
    result.map(|_| ()).map_err(|s| s.code())
}

/// Calls each guild-scoped RPC (that does not remove anyone or bump versions) as `user`.
async fn sweep(
    user: &User,
    g: &str,
    channel: &str,
    message: &str,
    member: &str,
) -> Vec<(&'static str, Result<(), Code>)> {
    use mzchat_proto::guild::*;
    let (gs, ms) = (|| user.guilds(), || user.messages());
    let at = |m: &str| (g.to_string(), channel.to_string(), m.to_string());
    let (gid, cid, mid) = at(message);
    vec![
        (
            "GetGuild",
            outcome(
                gs().get_guild(
                    user.req(GetGuildRequest {
                        guild_id: gid.clone(),
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "ListChannels",
            outcome(
                gs().list_channels(
                    user.req(ListChannelsRequest {
                        guild_id: gid.clone(),
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "ListRoles",
            outcome(
                gs().list_roles(
                    user.req(ListRolesRequest {
                        guild_id: gid.clone(),
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "ListMembers",
            outcome(
                gs().list_members(
                    user.req(ListMembersRequest {
                        guild_id: gid.clone(),
                        ..Default::default()
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "GetMember",
            outcome(
                gs().get_member(
                    user.req(GetMemberRequest {
                        guild_id: gid.clone(),
                        user_id: member.into(),
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "ListInvites",
            outcome(
                gs().list_invites(
                    user.req(ListInvitesRequest {
                        guild_id: gid.clone(),
                        ..Default::default()
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "ListBans",
            outcome(
                gs().list_bans(
                    user.req(ListBansRequest {
                        guild_id: gid.clone(),
                        ..Default::default()
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "UpdateGuild",
            outcome(
                gs().update_guild(
                    user.req(UpdateGuildRequest {
                        guild_id: gid.clone(),
                        name: Some("renamed".into()),
                        icon_file_id: None,
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "CreateChannel",
            outcome(
                gs().create_channel(
                    user.req(CreateChannelRequest {
                        guild_id: gid.clone(),
                        name: "c".into(),
                        ..Default::default()
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "CreateInvite",
            outcome(
                gs().create_invite(
                    user.req(CreateInviteRequest {
                        guild_id: gid.clone(),
                        channel_id: cid.clone(),
                        max_age: None,
                        max_uses: 0,
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "SendMessage",
            outcome(
                ms().send_message(
                    user.req(SendMessageRequest {
                        guild_id: gid.clone(),
                        channel_id: cid.clone(),
                        content: "x".into(),
                        ..Default::default()
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "ListMessages",
            outcome(
                ms().list_messages(
                    user.req(ListMessagesRequest {
                        guild_id: gid.clone(),
                        channel_id: cid.clone(),
                        anchor: None,
                        limit: 5,
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "GetMessage",
            outcome(
                ms().get_message(
                    user.req(GetMessageRequest {
                        guild_id: gid.clone(),
                        channel_id: cid.clone(),
                        message_id: mid.clone(),
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "PinMessage",
            outcome(
                ms().pin_message(
                    user.req(PinMessageRequest {
                        guild_id: gid.clone(),
                        channel_id: cid.clone(),
                        message_id: mid.clone(),
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "ListPins",
            outcome(
                ms().list_pins(
                    user.req(ListPinsRequest {
                        guild_id: gid.clone(),
                        channel_id: cid.clone(),
                        ..Default::default()
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "AddReaction",
            outcome(
                ms().add_reaction(
                    user.req(AddReactionRequest {
                        guild_id: gid.clone(),
                        channel_id: cid.clone(),
                        message_id: mid.clone(),
                        emoji: "👍".into(),
                    })
                    .await,
                )
                .await,
            ),
        ),
        (
            "SendTyping",
            outcome(
                ms().send_typing(
                    user.req(SendTypingRequest {
                        guild_id: gid.clone(),
                        channel_id: cid.clone(),
                    })
                    .await,
                )
                .await,
            ),
        ),
    ]
}

async fn every_guild_call_answers_by_role(backend: Backend) {
    use mzchat_proto::guild::{SendMessageRequest, UpdateRoleRequest};
    const MANAGE_GUILD: u64 = 1 << 1;
    const BAN_MEMBERS: u64 = 1 << 6;
    const MANAGE_MESSAGES: u64 = 1 << 10;
    const VIEW_AND_READ: u64 = (1 << 7) | (1 << 9);
    let needs_a_bit = [
        "ListInvites",
        "ListBans",
        "UpdateGuild",
        "CreateChannel",
        "PinMessage",
    ];

    let server = Homeserver::start(backend).await;
    let owner = server.user().await;
    let guild = create_guild(&owner, "matrix").await;
    let g = guild.id.as_str();
    let inv = invite(&owner, g, 0).await;
    let (plain, holder, stranger) = (
        server.user().await,
        server.user().await,
        server.user().await,
    );
    join(&plain, &inv.token).await.expect("join");
    join(&holder, &inv.token).await.expect("join");
    let staff = role(
        &owner,
        g,
        "Staff",
        MANAGE_GUILD | MANAGE_CHANNELS | BAN_MEMBERS | MANAGE_MESSAGES,
        5,
    )
    .await;
    assign(&owner, g, &holder, &staff).await;
    plain.refresh().await;
    holder.refresh().await;
    let message = owner
        .messages()
        .send_message(
            owner
                .req(SendMessageRequest {
                    guild_id: g.into(),
                    channel_id: inv.channel_id.clone(),
                    content: "m".into(),
                    ..Default::default()
                })
                .await,
        )
        .await
        .expect("send")
        .into_inner()
        .message
        .expect("message")
        .id;

    for (call, result) in sweep(&stranger, g, &inv.channel_id, &message, &owner.id()).await {
        assert_eq!(result, Err(Code::PermissionDenied), "non-member: {call}");
    }
    for (call, result) in sweep(&plain, g, &inv.channel_id, &message, &owner.id()).await {
        let expected = if needs_a_bit.contains(&call) {
            Err(Code::PermissionDenied)
        } else {
            Ok(())
        };
        assert_eq!(result, expected, "member without the bit: {call}");
    }
    for (call, result) in sweep(&holder, g, &inv.channel_id, &message, &owner.id()).await {
        assert_eq!(result, Ok(()), "member with the bit: {call}");
    }
    for (call, result) in sweep(&owner, g, &inv.channel_id, &message, &owner.id()).await {
        assert_eq!(result, Ok(()), "owner: {call}");
    }

    // Take the default bits away from @everyone: a plain member keeps only what is left.
    let everyone = owner
        .guilds()
        .list_roles(
            owner
                .req(mzchat_proto::guild::ListRolesRequest { guild_id: g.into() })
                .await,
        )
        .await
        .expect("roles")
        .into_inner()
        .roles
        .into_iter()
        .find(|r| r.is_everyone)
        .expect("@everyone");
    owner
        .guilds()
        .update_role(
            owner
                .req(UpdateRoleRequest {
                    guild_id: g.into(),
                    role_id: everyone.id,
                    permissions: Some(VIEW_AND_READ),
                    ..Default::default()
                })
                .await,
        )
        .await
        .expect("restrict @everyone");
    plain.refresh().await;
    for (call, result) in sweep(&plain, g, &inv.channel_id, &message, &owner.id()).await {
        let denied = needs_a_bit.contains(&call)
            || ["CreateInvite", "SendMessage", "AddReaction", "SendTyping"].contains(&call);
        let expected = if denied {
            Err(Code::PermissionDenied)
        } else {
            Ok(())
        };
        assert_eq!(
            result, expected,
            "member after @everyone lost its bits: {call}"
        );
    }
    server.finish().await;
}
