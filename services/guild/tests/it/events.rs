use std::{collections::HashMap, time::Duration};

use mzchat_proto::guild::{
    CreateRoleRequest, Event, SendMessageRequest, SendTypingRequest, SubscribeEventsRequest,
    event::Payload, event_service_client::EventServiceClient,
};
use tonic::{Code, Streaming};
use tonic_types::StatusExt;

use crate::{
    both_backends,
    harness::{Backend, Homeserver, User},
    messages::{Room, room},
};

async fn subscribe(
    user: &User,
    resume_after: Option<String>,
) -> Streaming<mzchat_proto::guild::SubscribeEventsResponse> {
    let request = user.req(SubscribeEventsRequest { resume_after }).await;
    EventServiceClient::new(user.client.channel(&user.origin).expect("channel"))
        .subscribe_events(request)
        .await
        .expect("subscribe")
        .into_inner()
}

/// The next event other than keepalives and presence, within 30 s.
async fn next(
    stream: &mut Streaming<mzchat_proto::guild::SubscribeEventsResponse>,
) -> Result<Event, tonic::Status> {
    loop {
        let event = next_any(stream).await?;
        if !matches!(event.payload, Some(Payload::PresenceUpdated(_))) {
            return Ok(event);
        }
    }
}

/// The next event other than a keepalive, within 30 s (a loaded machine can be slow).
async fn next_any(
    stream: &mut Streaming<mzchat_proto::guild::SubscribeEventsResponse>,
) -> Result<Event, tonic::Status> {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("an event within 30 s")?
            .expect("the stream goes on");
        let event = item.event.expect("event");
        if !matches!(event.payload, Some(Payload::Keepalive(_))) {
            return Ok(event);
        }
    }
}

fn content(event: &Event) -> Option<String> {
    match &event.payload {
        Some(Payload::MessageCreated(created)) => {
            created.message.as_ref().map(|m| m.content.clone())
        }
        _ => None,
    }
}

async fn say(user: &User, room: &Room, text: &str) {
    let request = SendMessageRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        content: text.into(),
        ..Default::default()
    };
    user.messages()
        .send_message(user.req(request).await)
        .await
        .expect("send");
}

both_backends!(
    members_see_events_live_in_order,
    a_reconnect_with_the_last_cursor_misses_nothing_and_repeats_nothing,
    concurrent_writers_keep_each_authors_order,
    a_stale_token_ends_the_stream_after_the_change,
    typing_reaches_the_stream,
);

async fn members_see_events_live_in_order(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let mut stream = subscribe(&grace, None).await;
    for i in 0..3 {
        say(&ada, &room, &format!("hello {i}")).await;
    }
    let mut cursors = Vec::new();
    for i in 0..3 {
        let event = next(&mut stream).await.expect("event");
        assert_eq!(event.guild_id, room.guild);
        assert_eq!(
            content(&event).as_deref(),
            Some(format!("hello {i}").as_str())
        );
        cursors.push(event.cursor.parse::<i64>().expect("cursor"));
    }
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    let stranger = server.user().await;
    let mut unrelated = subscribe(&stranger, None).await;
    say(&ada, &room, "private").await;
    let quiet = tokio::time::timeout(Duration::from_millis(800), unrelated.message()).await;
    assert!(
        quiet.is_err()
            || matches!(quiet, Ok(Ok(Some(ref r))) if matches!(r.event.as_ref().and_then(|e| e.payload.as_ref()), Some(Payload::Keepalive(_)))),
        "non-members see nothing"
    );
    server.finish().await;
}

async fn a_reconnect_with_the_last_cursor_misses_nothing_and_repeats_nothing(backend: Backend) {
    const TOTAL: usize = 1000;
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let mut stream = subscribe(&grace, None).await;
    let writer = {
        let request = |i: usize| SendMessageRequest {
            guild_id: room.guild.clone(),
            channel_id: room.channel.clone(),
            content: format!("burst {i}"),
            ..Default::default()
        };
        let requests: Vec<_> = (0..TOTAL).map(request).collect();
        let token = ada.client.access_token(&ada.origin).await.expect("token");
        let mut client = ada.messages();
        tokio::spawn(async move {
            for message in requests {
                let mut req = tonic::Request::new(message);
                req.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {token}").parse().expect("metadata"),
                );
                client.send_message(req).await.expect("send");
            }
        })
    };
    let mut seen = Vec::new();
    let mut last_cursor = String::new();
    while seen.len() < 300 {
        let event = next(&mut stream).await.expect("event");
        last_cursor = event.cursor.clone();
        seen.extend(content(&event));
    }
    drop(stream); // the connection is cut mid-burst
    let mut stream = subscribe(&grace, Some(last_cursor)).await;
    while seen.len() < TOTAL {
        let event = next(&mut stream).await.expect("event after resume");
        seen.extend(content(&event));
    }
    writer.await.expect("writer");
    let expected: Vec<String> = (0..TOTAL).map(|i| format!("burst {i}")).collect();
    assert_eq!(seen, expected, "every event once, in order");
    server.finish().await;
}

async fn concurrent_writers_keep_each_authors_order(backend: Backend) {
    const EACH: usize = 40;
    let server = Homeserver::start(backend).await;
    let (ada, grace, alan, barbara) = (
        server.user().await,
        server.user().await,
        server.user().await,
        server.user().await,
    );
    let room = room(&ada, &[&grace, &alan, &barbara]).await;
    let mut stream = subscribe(&ada, None).await;
    let writers: Vec<_> = [&grace, &alan, &barbara]
        .into_iter()
        .enumerate()
        .map(|(w, user)| {
            let room = Room {
                guild: room.guild.clone(),
                channel: room.channel.clone(),
            };
            async move {
                for i in 0..EACH {
                    say(user, &room, &format!("{w}:{i}")).await;
                }
            }
        })
        .collect();
    futures::future::join_all(writers).await;
    let mut per_writer: HashMap<String, Vec<usize>> = HashMap::new();
    let mut cursors = Vec::new();
    while per_writer.values().map(Vec::len).sum::<usize>() < 3 * EACH {
        let event = next(&mut stream).await.expect("event");
        cursors.push(event.cursor.parse::<i64>().expect("cursor"));
        if let Some(text) = content(&event) {
            let (w, i) = text.split_once(':').expect("w:i");
            per_writer
                .entry(w.into())
                .or_default()
                .push(i.parse().expect("index"));
        }
    }
    for (writer, order) in &per_writer {
        assert_eq!(
            *order,
            (0..EACH).collect::<Vec<_>>(),
            "writer {writer} in commit order"
        );
    }
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "cursors only grow");
    server.finish().await;
}

async fn a_stale_token_ends_the_stream_after_the_change(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let mut stream = subscribe(&grace, None).await;
    let role = CreateRoleRequest {
        guild_id: room.guild.clone(),
        name: "new".into(),
        permissions: 0,
        weight: 1,
        color: 0,
    };
    ada.guilds()
        .create_role(ada.req(role).await)
        .await
        .expect("create role");
    let mut saw_change = false;
    let status = loop {
        match next(&mut stream).await {
            Ok(event) => {
                saw_change |= matches!(event.payload, Some(Payload::PermissionsChanged(_)))
            }
            Err(status) => break status,
        }
    };
    assert!(
        saw_change,
        "PermissionsChanged is delivered before the stream ends"
    );
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.get_details_error_info().expect("info").reason,
        "PERMISSIONS_STALE"
    );
    // With a fresh token the client subscribes again.
    grace.refresh().await;
    subscribe(&grace, None).await;
    server.finish().await;
}

async fn typing_reaches_the_stream(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let mut stream = subscribe(&ada, None).await;
    let typing = SendTypingRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
    };
    grace
        .messages()
        .send_typing(grace.req(typing).await)
        .await
        .expect("typing");
    let event = next(&mut stream).await.expect("event");
    match event.payload {
        Some(Payload::TypingStarted(t)) => assert_eq!(t.user_id, grace.id()),
        other => panic!("expected TypingStarted, got {other:?}"),
    }
    assert!(event.cursor.is_empty(), "typing is not resumable");
    server.finish().await;
}

both_backends!(revoking_the_device_ends_its_stream);

async fn revoking_the_device_ends_its_stream(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let _room = room(&ada, &[&grace]).await;
    let mut stream = subscribe(&grace, None).await;
    grace
        .client
        .revoke_device(&grace.origin, "laptop")
        .await
        .expect("revoke");
    let status = loop {
        match next(&mut stream).await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{}", status.message());
    server.finish().await;
}

both_backends!(presence_follows_open_streams_with_a_grace_period);

/// The next presence update about `user_id`.
async fn presence_of(
    stream: &mut Streaming<mzchat_proto::guild::SubscribeEventsResponse>,
    user_id: &str,
) -> i32 {
    loop {
        if let Some(Payload::PresenceUpdated(update)) =
            next_any(stream).await.expect("event").payload
            && update.user_id == user_id
        {
            return update.status;
        }
    }
}

async fn presence_follows_open_streams_with_a_grace_period(backend: Backend) {
    use mzchat_proto::guild::PresenceStatus;
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let _room = room(&ada, &[&grace]).await;
    let mut watcher = subscribe(&ada, None).await;
    let first = subscribe(&grace, None).await;
    assert_eq!(
        presence_of(&mut watcher, &grace.id()).await,
        PresenceStatus::Online as i32
    );
    // A second stream, then the first closes: still online, nothing announced.
    let second = subscribe(&grace, None).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let last_closed = std::time::Instant::now();
    drop(second);
    assert_eq!(
        presence_of(&mut watcher, &grace.id()).await,
        PresenceStatus::Offline as i32
    );
    assert!(
        last_closed.elapsed() >= Duration::from_millis(400),
        "offline only once the last stream is gone and the grace period passed"
    );
    server.finish().await;
}

both_backends!(a_stream_resumes_on_another_replica_and_after_a_restart);

/// Subscribes `user` on a given replica, with the token its homeserver issued.
async fn subscribe_at(
    user: &User,
    addr: std::net::SocketAddr,
    resume_after: Option<String>,
) -> Streaming<mzchat_proto::guild::SubscribeEventsResponse> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect to the replica");
    EventServiceClient::new(channel)
        .subscribe_events(user.req(SubscribeEventsRequest { resume_after }).await)
        .await
        .expect("subscribe on the replica")
        .into_inner()
}

async fn a_stream_resumes_on_another_replica_and_after_a_restart(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    let replica = server.replica().await;
    let mut seen = Vec::new();
    let mut stream = subscribe(&grace, None).await;
    for i in 0..10 {
        say(&ada, &room, &format!("r{i}")).await;
    }
    let mut cursor = String::new();
    while seen.len() < 5 {
        let event = next(&mut stream).await.expect("event");
        cursor = event.cursor.clone();
        seen.extend(content(&event));
    }
    drop(stream);
    // The rest from the other replica, without a gap or a repeat.
    let mut stream = subscribe_at(&grace, replica.addr, Some(cursor.clone())).await;
    while seen.len() < 10 {
        let event = next(&mut stream).await.expect("event on the replica");
        cursor = event.cursor.clone();
        seen.extend(content(&event));
    }
    drop(stream);
    // The replica goes away; written meanwhile, read from a fresh one.
    replica.stop().await;
    for i in 10..15 {
        say(&ada, &room, &format!("r{i}")).await;
    }
    let restarted = server.replica().await;
    let mut stream = subscribe_at(&grace, restarted.addr, Some(cursor)).await;
    while seen.len() < 15 {
        let event = next(&mut stream).await.expect("event after the restart");
        seen.extend(content(&event));
    }
    let expected: Vec<String> = (0..15).map(|i| format!("r{i}")).collect();
    assert_eq!(seen, expected);
    drop(stream);
    restarted.stop().await;
    server.finish().await;
}

both_backends!(a_cursor_from_elsewhere_is_refused);

async fn a_cursor_from_elsewhere_is_refused(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let (ada, grace) = (server.user().await, server.user().await);
    let room = room(&ada, &[&grace]).await;
    say(&ada, &room, "something to resume after").await;
    for (cursor, code) in [
        ("999999999", Code::InvalidArgument),
        ("-1", Code::InvalidArgument),
        ("abc", Code::InvalidArgument),
    ] {
        let request = grace
            .req(SubscribeEventsRequest {
                resume_after: Some(cursor.into()),
            })
            .await;
        let status = EventServiceClient::new(grace.client.channel(&grace.origin).expect("channel"))
            .subscribe_events(request)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{cursor}");
    }
    server.finish().await;
}
