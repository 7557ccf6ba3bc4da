//! Who a mention pushes (GuildInternalService.ListPushTargets), as push-relay asks: named
//! members, or everyone one page at a time, never the author, and only for the internal caller.

use std::collections::HashSet;

use mzchat_proto::guild::{
    ListPushTargetsRequest, guild_internal_service_client::GuildInternalServiceClient,
};
use tonic::Code;

use crate::{
    both_backends,
    harness::{Backend, Homeserver},
    messages::room,
};

fn internal<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "mzchat-internal-token",
        "internal-test-token".parse().expect("ascii"),
    );
    request
}

async fn everyone_is_paged_and_named_members_answered_at_once(backend: Backend) {
    let server = Homeserver::start(backend).await;
    let owner = server.user().await;
    let mut members = Vec::new();
    for _ in 0..5 {
        members.push(server.user().await);
    }
    let room = room(&owner, &members.iter().collect::<Vec<_>>()).await;
    let mut guild =
        GuildInternalServiceClient::new(owner.client.channel(&server.origin).expect("channel"));
    let ask = |after: &str, limit: u32, user_ids: Vec<String>| ListPushTargetsRequest {
        guild_id: room.guild.clone(),
        channel_id: room.channel.clone(),
        user_ids,
        everyone: limit > 0,
        author_id: owner.id(),
        after_user_id: after.into(),
        limit,
    };

    // Six members in pages of two; the author is read but never a target.
    let mut seen = HashSet::new();
    let mut after = String::new();
    let mut pages = 0;
    loop {
        let page = guild
            .list_push_targets(internal(ask(&after, 2, vec![])))
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.targets.len() <= 2);
        for target in page.targets {
            assert_eq!(target.home_server, server.origin);
            assert!(seen.insert(target.user_id), "a member on two pages");
        }
        if page.next_after_user_id.is_empty() {
            break;
        }
        after = page.next_after_user_id;
    }
    let expected: HashSet<String> = members.iter().map(|m| m.id()).collect();
    assert_eq!(seen, expected);
    // Three full pages, then an empty one that says there is no more.
    assert_eq!(pages, 4, "pages for 6 members by 2");

    // Named members at once; a stranger and the author are left out.
    let named = vec![members[0].id(), owner.id(), "f".repeat(64)];
    let answer = guild
        .list_push_targets(internal(ask("", 0, named)))
        .await
        .expect("named")
        .into_inner();
    let ids: Vec<String> = answer.targets.into_iter().map(|t| t.user_id).collect();
    assert_eq!(ids, [members[0].id()]);
    assert!(answer.next_after_user_id.is_empty());

    let status = guild
        .list_push_targets(internal(ask("", 1001, vec![])))
        .await
        .expect_err("page too large");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = guild
        .list_push_targets(ask("", 2, vec![]))
        .await
        .expect_err("no internal credential");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    server.finish().await;
}

both_backends!(everyone_is_paged_and_named_members_answered_at_once);
