use std::time::Duration;

use mzchat_proto::guild::{
    AddReactionRequest, DeleteMessageRequest, EditMessageRequest, Event, GetMessageRequest,
    ListMessagesRequest, ListPinsRequest, ListReactionsRequest, Message, PinMessageRequest,
    RemoveReactionRequest, SendMessageRequest, SendTypingRequest, event::Payload,
    list_messages_request::Anchor,
};
use prost::Message as _;
use tonic::Code;

use crate::{
    both_backends,
    guilds::create_guild,
    harness::{Backend, Homeserver, User},
    invites::{invite, join},
};

pub struct Room {
    pub guild: String,
    pub channel: String,
}

pub async fn room(owner: &User, members: &[&User]) -> Room {
    let guild = create_guild(owner, "room").await;
    let token = invite(owner, &guild.id, 0).await;
    for member in members {
        join(member, &token.token).await.expect("join");
    }
    Room {
        guild: guild.id,
        channel: token.channel_id,
    }
}

pub(crate) fn text(room: &Room, content: &str) -> SendMessageRequest {
    SendMessageRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        content: content.into(),
        ..Default::default()
    }
}

pub(crate) async fn send(
    user: &User,
    request: SendMessageRequest,
) -> Result<Message, tonic::Status> {
    let response = user
        .messages()
        .send_message(user.req(request).await)
        .await?;
    Ok(response.into_inner().message.expect("message"))
}

pub(crate) async fn history(
    user: &User,
    room: &Room,
    anchor: Option<Anchor>,
    limit: u32,
) -> Result<Vec<Message>, tonic::Status> {
    let request = ListMessagesRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        anchor,
        limit,
    };
    Ok(user
        .messages()
        .list_messages(user.req(request).await)
        .await?
        .into_inner()
        .messages)
}

fn contents(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.content.as_str()).collect()
}

both_backends!(
    history_pages_in_both_directions,
    only_authors_edit_and_moderators_delete,
    a_retried_send_with_the_same_nonce_is_one_message,
    concurrent_sends_sharing_nonces_are_one_message_each,
    mentions_are_checked,
    pins_and_reactions_follow_permissions,
    typing_is_ephemeral_and_rate_limited,
);

async fn history_pages_in_both_directions(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let mut sent = Vec::new();
    for i in 0..7 {
        sent.push(
            send(&ada, text(&room, &format!("m{i}")))
                .await
                .expect("send"),
        );
    }
    assert_eq!(
        contents(&history(&grace, &room, None, 3).await.expect("latest")),
        ["m4", "m5", "m6"]
    );
    let before = Some(Anchor::Before(sent[4].id.clone()));
    assert_eq!(
        contents(&history(&grace, &room, before, 2).await.expect("before")),
        ["m2", "m3"]
    );
    let after = Some(Anchor::After(sent[4].id.clone()));
    assert_eq!(
        contents(&history(&grace, &room, after, 10).await.expect("after")),
        ["m5", "m6"]
    );
    let around = Some(Anchor::Around(sent[3].id.clone()));
    assert_eq!(
        contents(&history(&grace, &room, around, 3).await.expect("around")),
        ["m2", "m3", "m4"]
    );
    assert_eq!(
        history(&grace, &room, None, 101)
            .await
            .expect_err("too many")
            .code(),
        Code::InvalidArgument
    );
    let garbage = Some(Anchor::Before("not-an-id".into()));
    assert_eq!(
        history(&grace, &room, garbage, 5)
            .await
            .expect_err("bad anchor")
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        send(&grace, text(&room, " "))
            .await
            .expect_err("empty")
            .code(),
        Code::InvalidArgument
    );
    let stranger = server.user().await;
    assert_eq!(
        history(&stranger, &room, None, 5)
            .await
            .expect_err("not a member")
            .code(),
        Code::PermissionDenied
    );
    server.finish().await;
}

async fn only_authors_edit_and_moderators_delete(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace, alan) = (
        server.user().await,
        server.user().await,
        server.user().await,
    );
    let room = room(&ada, &[&grace, &alan]).await;
    let message = send(&grace, text(&room, "first draft"))
        .await
        .expect("send");
    let edit = |content: &str| EditMessageRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        message_id: message.id.clone(),
        content: content.into(),
        ..Default::default()
    };
    let status = alan
        .messages()
        .edit_message(alan.req(edit("hijack")).await)
        .await
        .expect_err("not the author");
    assert_eq!(status.code(), Code::PermissionDenied);
    let edited = grace
        .messages()
        .edit_message(grace.req(edit("final")).await)
        .await
        .expect("author edits")
        .into_inner();
    let edited = edited.message.expect("message");
    assert_eq!(edited.content, "final");
    assert!(edited.edited_at.is_some());

    let delete = DeleteMessageRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        message_id: message.id.clone(),
    };
    let status = alan
        .messages()
        .delete_message(alan.req(delete.clone()).await)
        .await
        .expect_err("no MANAGE_MESSAGES");
    assert_eq!(status.code(), Code::PermissionDenied);
    ada.messages()
        .delete_message(ada.req(delete).await)
        .await
        .expect("an administrator deletes");
    let get = GetMessageRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        message_id: message.id,
    };
    assert_eq!(
        grace
            .messages()
            .get_message(grace.req(get).await)
            .await
            .expect_err("gone")
            .code(),
        Code::NotFound
    );
    server.finish().await;
}

async fn a_retried_send_with_the_same_nonce_is_one_message(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let ada = server.user().await;
    let room = room(&ada, &[]).await;
    let request = SendMessageRequest {
        nonce: "client-42".into(),
        ..text(&room, "once")
    };
    let first = send(&ada, request.clone()).await.expect("send");
    let again = send(&ada, request).await.expect("retry");
    assert_eq!(first.id, again.id);
    assert_eq!(
        history(&ada, &room, None, 10).await.expect("history").len(),
        1
    );
    server.finish().await;
}

/// Sends that arrive together are written together (one transaction); a nonce repeated within
/// such a batch, or across batches, still makes one message, and every sender gets its id.
async fn concurrent_sends_sharing_nonces_are_one_message_each(backend: Backend) {
    const NONCES: usize = 30;
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let (room, grace) = (&room, &grace);
    let sends = (0..NONCES).flat_map(|n| {
        (0..3).map(move |_| {
            let request = SendMessageRequest {
                nonce: format!("n{n}"),
                ..text(room, &format!("m{n}"))
            };
            async move { (n, send(grace, request).await.expect("send")) }
        })
    });
    let sent = futures::future::join_all(sends).await;
    let mut ids = std::collections::HashMap::new();
    for (n, message) in &sent {
        assert_eq!(message.content, format!("m{n}"));
        let first = ids.entry(*n).or_insert_with(|| message.id.clone());
        assert_eq!(
            *first, message.id,
            "every send of nonce n{n} answers one message"
        );
    }
    let stored = history(&ada, room, None, 100).await.expect("history");
    assert_eq!(stored.len(), NONCES, "one message per nonce");
    server.finish().await;
}

async fn mentions_are_checked(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace, outsider) = (
        server.user().await,
        server.user().await,
        server.user().await,
    );
    let room = room(&ada, &[&grace]).await;
    let mention = |ids: Vec<String>, everyone: bool| SendMessageRequest {
        mention_user_ids: ids,
        mention_everyone: everyone,
        ..text(&room, "hey")
    };
    let sent = send(&grace, mention(vec![ada.id(), ada.id()], false))
        .await
        .expect("mention a member");
    assert_eq!(sent.mention_user_ids, [ada.id()]);
    let status = send(&grace, mention(vec![outsider.id()], false))
        .await
        .expect_err("not a member");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = send(&grace, mention(vec![], true))
        .await
        .expect_err("no MENTION_EVERYONE");
    assert_eq!(status.code(), Code::PermissionDenied);
    send(&ada, mention(vec![], true))
        .await
        .expect("an administrator mentions everyone");
    let attachment = SendMessageRequest {
        attachment_file_ids: vec!["0192f5e4-8a3b-7c2d-9e1f-123456789abc.png".into()],
        ..text(&room, "look")
    };
    assert_eq!(
        send(&ada, attachment)
            .await
            .expect_err("this test server runs no media service")
            .code(),
        Code::FailedPrecondition
    );
    server.finish().await;
}

async fn pins_and_reactions_follow_permissions(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let message = send(&grace, text(&room, "pin me")).await.expect("send");
    let pin = PinMessageRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        message_id: message.id.clone(),
    };
    assert_eq!(
        grace
            .messages()
            .pin_message(grace.req(pin.clone()).await)
            .await
            .expect_err("member")
            .code(),
        Code::PermissionDenied
    );
    ada.messages()
        .pin_message(ada.req(pin.clone()).await)
        .await
        .expect("pin");
    ada.messages()
        .pin_message(ada.req(pin).await)
        .await
        .expect("pin again is fine");
    let pins = ListPinsRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        ..Default::default()
    };
    let pinned = grace
        .messages()
        .list_pins(grace.req(pins).await)
        .await
        .expect("pins")
        .into_inner()
        .messages;
    assert_eq!(pinned.len(), 1);
    assert!(pinned[0].pinned);

    let react = |emoji: &str| AddReactionRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        message_id: message.id.clone(),
        emoji: emoji.into(),
    };
    for user in [&ada, &ada, &grace] {
        user.messages()
            .add_reaction(user.req(react("👍")).await)
            .await
            .expect("react");
    }
    let seen = history(&grace, &room, None, 10).await.expect("history");
    let summary = &seen[0].reactions;
    assert_eq!(
        (summary[0].emoji.as_str(), summary[0].count, summary[0].me),
        ("👍", 2, true)
    );
    let who = ListReactionsRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        message_id: message.id.clone(),
        emoji: "👍".into(),
        ..Default::default()
    };
    let users = grace
        .messages()
        .list_reactions(grace.req(who).await)
        .await
        .expect("reactors")
        .into_inner()
        .user_ids;
    assert_eq!(users.len(), 2);
    let remove = |user_id: String| RemoveReactionRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        message_id: message.id.clone(),
        emoji: "👍".into(),
        user_id,
    };
    let status = grace
        .messages()
        .remove_reaction(grace.req(remove(ada.id())).await)
        .await
        .expect_err("someone else's");
    assert_eq!(status.code(), Code::PermissionDenied);
    grace
        .messages()
        .remove_reaction(grace.req(remove(String::new())).await)
        .await
        .expect("own");
    ada.messages()
        .remove_reaction(ada.req(remove(ada.id())).await)
        .await
        .expect("own");
    assert!(
        history(&grace, &room, None, 10).await.expect("history")[0]
            .reactions
            .is_empty()
    );
    server.finish().await;
}

async fn typing_is_ephemeral_and_rate_limited(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let mut live = server
        .bus
        .subscribe(&format!("guild.v1.g.{}.typing.started", room.guild))
        .await
        .expect("subscribe");
    let typing = SendTypingRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
    };
    grace
        .messages()
        .send_typing(grace.req(typing.clone()).await)
        .await
        .expect("typing");
    grace
        .messages()
        .send_typing(grace.req(typing).await)
        .await
        .expect("again, within 3 s");
    let first = tokio::time::timeout(Duration::from_secs(5), live.recv())
        .await
        .expect("a typing notice")
        .expect("message");
    let event = Event::decode(first.payload).expect("event");
    match event.payload {
        Some(Payload::TypingStarted(t)) => assert_eq!(t.user_id, grace.id()),
        other => panic!("expected TypingStarted, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), live.recv())
            .await
            .is_err(),
        "the second notice was dropped"
    );
    // Nothing about typing is stored: history stays empty.
    assert!(
        history(&ada, &room, None, 10)
            .await
            .expect("history")
            .is_empty()
    );
    server.finish().await;
}
