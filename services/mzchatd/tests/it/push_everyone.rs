//! MENTION_EVERYONE pushes every member who can view the channel (a fan-out worked a page at a
//! time, here pages of two so it takes several): named members get a MENTION notice, the rest
//! MENTION_EVERYONE, the author nothing.

use std::time::Duration;

use mzchat_proto::guild::{SendMessageRequest, message_service_client::MessageServiceClient};

use crate::{
    daemon::{Daemon, unique},
    federation::{guild_with_invite, user},
    push::{distributor, distributor_server, register},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_is_pushed_and_named_members_as_mentions() {
    let data = std::env::temp_dir().join(unique("mzchatd-push-everyone-"));
    let daemon = Daemon::start(
        &data,
        &[
            "--push-allow-endpoint-hosts",
            "127.0.0.1",
            "--push-fanout-page",
            "2",
        ],
    );
    let origin = daemon.origin.clone();
    let alice = user(&origin, "laptop");
    let (guild_id, channel_id, link) = guild_with_invite(&alice, &origin).await;
    let (url, mut pushes) = distributor_server().await;
    register(&alice, &origin, distributor("laptop", &url))
        .await
        .expect("alice's distributor");
    let mut members = Vec::new();
    for name in ["bob", "carol", "dave", "erin", "frank"] {
        let member = user(&origin, name);
        member.join_invite(&link, None).await.expect("joins");
        register(&member, &origin, distributor(name, &url))
            .await
            .expect("distributor");
        members.push(member);
    }
    let bob_id = members[0].identity().user_id();
    let request = SendMessageRequest {
        guild_id,
        channel_id,
        content: "@everyone lunch".into(),
        mention_user_ids: vec![bob_id.clone()],
        mention_everyone: true,
        ..Default::default()
    };
    let request = alice.authed(&origin, request).await.expect("token");
    let message = MessageServiceClient::new(alice.channel(&origin).expect("channel"))
        .send_message(request)
        .await
        .expect("send")
        .into_inner()
        .message
        .expect("message");
    let mut notices = Vec::new();
    while notices.len() < 5 {
        let (_, body) = tokio::time::timeout(Duration::from_secs(20), pushes.recv())
            .await
            .expect("every member is pushed")
            .expect("distributor running");
        assert!(!body.contains("lunch"), "no message text: {body}");
        let notice: serde_json::Value = serde_json::from_str(&body).expect("JSON notice");
        assert_eq!(notice["message_id"], message.id.as_str());
        notices.push(notice);
    }
    let mentions = notices.iter().filter(|n| n["kind"] == "MENTION").count();
    let everyone = notices
        .iter()
        .filter(|n| n["kind"] == "MENTION_EVERYONE")
        .count();
    assert_eq!((mentions, everyone), (1, 4), "{notices:?}");
    // Each member once; the author is not pushed about her own message.
    let extra = tokio::time::timeout(Duration::from_millis(500), pushes.recv()).await;
    assert!(extra.is_err(), "a sixth push: {extra:?}");
    drop(daemon);
    std::fs::remove_dir_all(data).ok();
}
