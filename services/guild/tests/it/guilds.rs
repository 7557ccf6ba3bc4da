use mzchat_proto::guild::{
    CreateChannelRequest, CreateGuildRequest, DeleteGuildRequest, GetGuildRequest, Guild,
    ListChannelsRequest, ListGuildsRequest, ListRolesRequest, UpdateGuildRequest,
};
use tonic::Code;

use crate::{
    both_backends,
    harness::{Backend, Homeserver, User},
};

/// Creates a guild as `owner` and switches `owner` to the token that carries it.
pub async fn create_guild(owner: &User, name: &str) -> Guild {
    let created = owner
        .guilds()
        .create_guild(
            owner
                .req(CreateGuildRequest {
                    name: name.into(),
                    ..Default::default()
                })
                .await,
        )
        .await
        .expect("create guild")
        .into_inner();
    owner.adopt(&created.access_token, created.access_token_expires_at);
    created.guild.expect("guild")
}

both_backends!(
    a_new_guild_has_its_owner_roles_and_general_channel,
    only_the_owner_deletes_a_guild,
    members_show_the_profile_identity_publishes
);

async fn members_show_the_profile_identity_publishes(backend: Backend) {
    use mzchat_proto::{
        guild::GetMemberRequest,
        identity::{UpdateProfileRequest, identity_service_client::IdentityServiceClient},
    };
    let server = Homeserver::start(backend).await;
    let ada = server.user().await;
    let guild = create_guild(&ada, "Engines").await;
    let mut identity =
        IdentityServiceClient::new(ada.client.channel(&ada.origin).expect("channel"));
    let rename = UpdateProfileRequest {
        display_name: Some("Ada Lovelace".into()),
        ..Default::default()
    };
    identity
        .update_profile(ada.req(rename).await)
        .await
        .expect("rename");
    let start = std::time::Instant::now();
    loop {
        let request = ada
            .req(GetMemberRequest {
                guild_id: guild.id.clone(),
                user_id: ada.id(),
            })
            .await;
        let member = ada
            .guilds()
            .get_member(request)
            .await
            .expect("member")
            .into_inner()
            .member
            .expect("member");
        let name = member.profile.map(|p| p.display_name).unwrap_or_default();
        if name == "Ada Lovelace" {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the member's profile never followed identity: {name:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.finish().await;
}

async fn a_new_guild_has_its_owner_roles_and_general_channel(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let ada = server.user().await;
    let guild = create_guild(&ada, "  Analytical Engines ").await;
    assert_eq!(guild.name, "Analytical Engines");
    assert_eq!(guild.owner_id, ada.id());
    assert_eq!(guild.member_count, 1);

    let got = ada
        .guilds()
        .get_guild(
            ada.req(GetGuildRequest {
                guild_id: guild.id.clone(),
            })
            .await,
        )
        .await;
    assert_eq!(
        got.expect("get with the new token")
            .into_inner()
            .guild
            .expect("guild")
            .id,
        guild.id
    );
    let channels = ada
        .guilds()
        .list_channels(
            ada.req(ListChannelsRequest {
                guild_id: guild.id.clone(),
            })
            .await,
        )
        .await
        .expect("channels")
        .into_inner()
        .channels;
    assert_eq!(
        channels.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["general"]
    );
    let roles = ada
        .guilds()
        .list_roles(
            ada.req(ListRolesRequest {
                guild_id: guild.id.clone(),
            })
            .await,
        )
        .await
        .expect("roles")
        .into_inner()
        .roles;
    assert_eq!(roles.len(), 2);
    assert!(
        roles[0].is_everyone && roles[0].permissions == 0x1B90,
        "{roles:?}"
    );
    assert_eq!((roles[1].name.as_str(), roles[1].permissions), ("Admin", 1));

    let listed = ada
        .guilds()
        .list_guilds(ada.req(ListGuildsRequest {}).await)
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.guilds.len(), 1);

    let renamed = ada
        .guilds()
        .update_guild(
            ada.req(UpdateGuildRequest {
                guild_id: guild.id.clone(),
                name: Some("Engines".into()),
                icon_file_id: None,
            })
            .await,
        )
        .await
        .expect("rename")
        .into_inner();
    assert_eq!(renamed.guild.expect("guild").name, "Engines");

    let bad = ada
        .guilds()
        .create_channel(
            ada.req(CreateChannelRequest {
                guild_id: guild.id.clone(),
                name: "\u{7}".into(),
                ..Default::default()
            })
            .await,
        )
        .await
        .expect_err("bad name");
    assert_eq!(bad.code(), Code::InvalidArgument);
    server.finish().await;
}

async fn only_the_owner_deletes_a_guild(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let ada = server.user().await;
    let guild = create_guild(&ada, "doomed").await;
    let grace = server.user().await;
    let status = grace
        .guilds()
        .delete_guild(
            grace
                .req(DeleteGuildRequest {
                    guild_id: guild.id.clone(),
                })
                .await,
        )
        .await
        .expect_err("not a member");
    assert_eq!(status.code(), Code::PermissionDenied);
    ada.guilds()
        .delete_guild(
            ada.req(DeleteGuildRequest {
                guild_id: guild.id.clone(),
            })
            .await,
        )
        .await
        .expect("owner deletes");
    let status = ada
        .guilds()
        .get_guild(ada.req(GetGuildRequest { guild_id: guild.id }).await)
        .await
        .expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    server.finish().await;
}
