//! Rate limits: refusals a client can act on, shared by every replica of a homeserver.

use std::time::Duration;

use mzchat_proto::guild::{
    AddReactionRequest, PreviewInviteRequest, SubscribeEventsRequest,
    event_service_client::EventServiceClient, guild_service_client::GuildServiceClient,
    message_service_client::MessageServiceClient,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::{
    both_backends,
    harness::{Backend, Homeserver},
    invites::invite,
    messages::{history, room, send, text},
};

both_backends!(
    message_sends_are_limited_across_replicas,
    invite_previews_are_limited_per_address,
    reactions_and_streams_are_bounded,
);

/// A refusal names its limit and says when to retry, at most one interval of `rule` away.
fn assert_refused(status: &Status, limit: &str, interval: Duration) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(limit), "{}", status.message());
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.reason, "RATE_LIMITED");
    assert_eq!(info.metadata["limit"], limit);
    let retry = status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("retry info");
    assert!(
        retry > Duration::ZERO && retry <= interval,
        "retry after {retry:?}"
    );
}

async fn message_sends_are_limited_across_replicas(backend: Backend) {
    let server = Homeserver::start_limited(backend, &["all=off", "message.send=4/1m"]).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let replica = server.replica().await;
    let on_replica = MessageServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", replica.addr))
            .expect("url")
            .connect_lazy(),
    );
    // Calls alternate between the two replicas; together they allow the limit, once.
    let mut refusals = Vec::new();
    for i in 0..8 {
        let request = ada.req(text(&room, &format!("m{i}"))).await;
        let result = if i % 2 == 0 {
            ada.messages().send_message(request).await
        } else {
            on_replica.clone().send_message(request).await
        };
        if let Err(status) = result {
            refusals.push(status);
        }
    }
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    for status in &refusals {
        assert_refused(status, "message.send", Duration::from_secs(15));
    }
    // Only the allowed sends were stored; another user still has a full bucket.
    let stored = history(&grace, &room, None, 50).await.expect("history");
    assert_eq!(stored.len(), 4);
    send(&grace, text(&room, "mine"))
        .await
        .expect("grace sends");
    replica.stop().await;
    server.finish().await;
}

async fn invite_previews_are_limited_per_address(backend: Backend) {
    let server = Homeserver::start_limited(backend, &["all=off", "ip.invite=2/1m"]).await;
    let ada = server.user().await;
    let room = room(&ada, &[]).await;
    let token = invite(&ada, &room.guild, 0).await.token;
    let mut anonymous = GuildServiceClient::new(
        tonic::transport::Endpoint::from_shared(server.origin.clone())
            .expect("url")
            .connect_lazy(),
    );
    let preview = || PreviewInviteRequest {
        token: token.clone(),
    };
    for _ in 0..2 {
        anonymous
            .preview_invite(preview())
            .await
            .expect("within the limit");
    }
    let refused = anonymous
        .preview_invite(preview())
        .await
        .expect_err("over the limit");
    assert_refused(&refused, "ip.invite", Duration::from_secs(30));
    server.finish().await;
}

async fn react(
    user: &crate::harness::User,
    room: &crate::messages::Room,
    message_id: &str,
    emoji: &str,
) -> Result<(), Status> {
    let request = AddReactionRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        message_id: message_id.into(),
        emoji: emoji.into(),
    };
    user.messages()
        .add_reaction(user.req(request).await)
        .await
        .map(|_| ())
}

/// What travels whole with every message or costs a task per stream has a ceiling.
async fn reactions_and_streams_are_bounded(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let message = send(&ada, text(&room, "react")).await.expect("send");
    for i in 0..20 {
        react(&ada, &room, &message.id, &format!("e{i}"))
            .await
            .expect("within the cap");
    }
    let refused = react(&ada, &room, &message.id, "e20")
        .await
        .expect_err("a 21st emoji");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // Joining an existing reaction adds no emoji.
    react(&grace, &room, &message.id, "e7")
        .await
        .expect("an existing emoji");

    let events = || {
        EventServiceClient::new(
            tonic::transport::Endpoint::from_shared(server.origin.clone())
                .expect("url")
                .connect_lazy(),
        )
    };
    let mut open = Vec::new();
    for _ in 0..10 {
        let request = grace.req(SubscribeEventsRequest::default()).await;
        open.push(events().subscribe_events(request).await.expect("stream"));
    }
    let request = grace.req(SubscribeEventsRequest::default()).await;
    let refused = events()
        .subscribe_events(request)
        .await
        .expect_err("an 11th stream");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    drop(open);
    server.finish().await;
}
