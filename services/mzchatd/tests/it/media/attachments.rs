//! Guild messages carry attachments by file id: the file must be the sender's own complete
//! upload made as an attachment; the message keeps its type, size and name, and its URL is on
//! the assets origin. Guild icons and avatars are checked the same way.

use mzchat_proto::{
    guild::{
        ListMessagesRequest, SendMessageRequest, UpdateGuildRequest,
        guild_service_client::GuildServiceClient, message_service_client::MessageServiceClient,
    },
    identity::{UpdateProfileRequest, identity_service_client::IdentityServiceClient},
    media::UploadPurpose,
};
use tonic::Code;

use super::*;
use crate::federation::guild_with_invite;

async fn messages_carry_their_senders_uploads(store: Store) {
    let server = MediaServer::start(store, &[], None);
    let origin = server.origin().to_owned();
    let alice = server.user("laptop");
    let (guild_id, channel_id, link) = guild_with_invite(&alice, &origin).await;
    let bob = server.user("phone");
    bob.join_invite(&link, None).await.expect("bob joins");
    let report = b"quarterly numbers\n".to_vec();
    let file = upload(
        &alice,
        &origin,
        "report.txt",
        UploadPurpose::Attachment,
        report.clone(),
    )
    .await
    .expect("upload");
    let bobs = upload(
        &bob,
        &origin,
        "bob.txt",
        UploadPurpose::Attachment,
        b"mine".to_vec(),
    )
    .await
    .expect("bob's upload");
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(bytes_of(64, 2));
    let avatar = upload(&alice, &origin, "me.png", UploadPurpose::Avatar, png)
        .await
        .expect("avatar");

    let send = |file_ids: Vec<String>| {
        let request = SendMessageRequest {
            guild_id: guild_id.clone(),
            channel_id: channel_id.clone(),
            content: "see attached".into(),
            attachment_file_ids: file_ids,
            ..Default::default()
        };
        let (alice, origin) = (&alice, &origin);
        async move {
            let request = alice.authed(origin, request).await.expect("token");
            MessageServiceClient::new(alice.channel(origin).expect("channel"))
                .send_message(request)
                .await
                .map(|r| r.into_inner().message.expect("message"))
        }
    };
    let message = send(vec![file.file_id.clone()])
        .await
        .expect("with attachment");
    let attachment = &message.attachments[0];
    assert_eq!(attachment.file_id, file.file_id);
    assert_eq!(attachment.content_type, "text/plain");
    assert_eq!(attachment.size, report.len() as u64);
    assert_eq!(attachment.file_name, "report.txt");
    assert_eq!(attachment.url, file.url);
    let served = http_get(server.assets_port(), &path_of(&file), &[]).await;
    assert_eq!(served.body, report);

    let missing = "0190a3e4-0000-7000-8000-000000000000.txt".to_owned();
    for (ids, code) in [
        (vec![bobs.file_id.clone()], Code::PermissionDenied),
        (vec![missing], Code::InvalidArgument),
        (vec![avatar.file_id.clone()], Code::InvalidArgument),
        (vec!["../../etc/passwd".to_owned()], Code::InvalidArgument),
    ] {
        let status = send(ids.clone()).await.expect_err("refused");
        assert_eq!(status.code(), code, "{ids:?}: {status:?}");
    }

    // A guild icon is the owner's own upload made as an icon.
    let mut icon_png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    icon_png.extend(bytes_of(64, 3));
    let icon = upload(
        &alice,
        &origin,
        "icon.png",
        UploadPurpose::GuildIcon,
        icon_png,
    )
    .await
    .expect("icon");
    let update = |icon_file_id: String| {
        let request = UpdateGuildRequest {
            guild_id: guild_id.clone(),
            icon_file_id: Some(icon_file_id),
            ..Default::default()
        };
        let (alice, origin) = (&alice, &origin);
        async move {
            let request = alice.authed(origin, request).await.expect("token");
            GuildServiceClient::new(alice.channel(origin).expect("channel"))
                .update_guild(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    update(icon.file_id.clone()).await.expect("an icon upload");
    let status = update(avatar.file_id.clone())
        .await
        .expect_err("an avatar is no icon");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = update(bobs.file_id.clone()).await.expect_err("bob's file");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // An avatar is the account's own upload made as an avatar; the profile shows its URL.
    let profile = set_avatar(&alice, &origin, &avatar.file_id)
        .await
        .expect("avatar");
    assert_eq!(profile.avatar_url, avatar.url);
    let status = set_avatar(&alice, &origin, &icon.file_id)
        .await
        .expect_err("an icon");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = set_avatar(&bob, &origin, &avatar.file_id)
        .await
        .expect_err("alice's avatar");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // Members reading the channel see the attachment as sent.
    let request = bob
        .authed(
            &origin,
            ListMessagesRequest {
                guild_id: guild_id.clone(),
                channel_id: channel_id.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("token");
    let listed = MessageServiceClient::new(bob.channel(&origin).expect("channel"))
        .list_messages(request)
        .await
        .expect("history")
        .into_inner()
        .messages;
    let seen = listed
        .iter()
        .find(|m| m.id == message.id)
        .expect("the message");
    assert_eq!(seen.attachments, message.attachments);
    server.finish().await;
}

async fn set_avatar(
    client: &Client,
    origin: &str,
    file_id: &str,
) -> Result<mzchat_proto::common::Profile, tonic::Status> {
    let request = UpdateProfileRequest {
        avatar_file_id: Some(file_id.to_owned()),
        ..Default::default()
    };
    let request = client.authed(origin, request).await.expect("token");
    IdentityServiceClient::new(client.channel(origin).expect("channel"))
        .update_profile(request)
        .await
        .map(|r| r.into_inner().profile.expect("profile"))
}

both_stores!(messages_carry_their_senders_uploads);
