//! A relayed push while the user's home server is down (issue 5): federation-sync retries the
//! PushNotification until its TTL, then dead-letters it with the reason, and the push is never
//! delivered late once the home server is back.

use mzchat_proto::federation::{
    ListDeadLettersRequest, federation_admin_service_client::FederationAdminServiceClient,
    federation_job::Kind,
};

use super::*;
use crate::push::{distributor, distributor_server, register};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_for_a_home_that_is_down_expires_into_the_dead_letters() {
    let allow = ["--push-allow-endpoint-hosts", "127.0.0.1"];
    let mut a = Homeserver::start(Backend::PostgresNats, &allow);
    let b = Homeserver::start(
        Backend::PostgresNats,
        &[allow[0], allow[1], "--push-ttl-secs", "4"],
    );
    let (url, mut pushes) = distributor_server().await;
    let bob = user(&a.origin, "phone");
    bob.login(&a.origin, None, "").await.expect("bob at home");
    register(&bob, &a.origin, distributor("phone", &url))
        .await
        .expect("bob's distributor, on A");
    let alice = user(&b.origin, "laptop");
    let (guild_id, channel_id, link) = guild_with_invite(&alice, &b.origin).await;
    bob.join_invite(&link, None).await.expect("bob joins on B");
    wait_for_account(&bob, &b.origin, Duration::from_secs(30), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;
    // B relays once it holds A's delegation token (kept from the same answer).
    let bob_id = bob.identity().user_id();
    let mut relayed = false;
    for attempt in 0..10 {
        let text = format!("ping {attempt}");
        mention(
            &alice,
            &b.origin,
            &guild_id,
            &channel_id,
            bob_id.clone(),
            &text,
        )
        .await;
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(3), pushes.recv()).await {
            relayed = true;
            break;
        }
    }
    assert!(relayed, "a push relayed through A before it goes down");

    a.stop();
    let late = mention(
        &alice,
        &b.origin,
        &guild_id,
        &channel_id,
        bob_id,
        "while A is down",
    )
    .await;
    let prefix = b.bus_prefix.clone().expect("prefix");
    let mut admin = FederationAdminServiceClient::new(alice.channel(&b.origin).expect("channel"));
    let start = Instant::now();
    let letter = loop {
        let request = internal(
            &prefix,
            ListDeadLettersRequest {
                destination: a.origin.clone(),
                ..Default::default()
            },
        );
        let letters = admin
            .list_dead_letters(request)
            .await
            .expect("dead letters")
            .into_inner()
            .dead_letters;
        let push_for = |l: &mzchat_proto::federation::DeadLetter| match l
            .job
            .as_ref()
            .and_then(|j| j.kind.as_ref())
        {
            Some(Kind::PushNotification(p)) => p.payload.as_ref().map(|p| p.message_id.clone()),
            _ => None,
        };
        if let Some(letter) = letters.iter().find(|l| push_for(l) == Some(late.clone())) {
            break letter.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the push never expired into the dead letters: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(letter.last_error.contains("expire"), "{letter:?}");
    eprintln!(
        "the push for a stopped home was dead-lettered {:?} after the send: {}",
        start.elapsed(),
        letter.last_error
    );

    // A is back: the expired push is not delivered late.
    a.resume();
    let got = tokio::time::timeout(Duration::from_secs(3), pushes.recv()).await;
    if let Ok(Some((_, body))) = got {
        assert!(
            !body.contains(&late),
            "an expired push was delivered: {body}"
        );
    }
    a.remove().await;
    b.remove().await;
}
