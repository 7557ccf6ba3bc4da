//! The operator API: dead letters and destination health.

use super::*;

/// A job the destination refuses for good becomes a dead letter an operator can list and
/// retry; a job that outlives its TTL against a dead destination does too; destinations report
/// their health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_retried_and_destinations_report_health() {
    use mzchat_proto::federation::{
        DestinationHealth, ListDeadLettersRequest, ListDestinationsRequest, RetryDeadLetterRequest,
        federation_admin_service_client::FederationAdminServiceClient,
    };
    let b = Homeserver::start(Backend::PostgresNats, &[]);
    // A refuses to federate with B.
    let mut a = Homeserver::start(Backend::PostgresNats, &["--federation-deny", &b.origin]);
    let alice = user(&a.origin, "laptop");
    alice
        .login(&a.origin, None, "")
        .await
        .expect("alice at home");
    alice.login(&b.origin, None, "").await.expect("alice on B");

    let prefix = b.bus_prefix.clone().expect("prefix");
    let admin = FederationAdminServiceClient::new(alice.channel(&b.origin).expect("channel"));
    let unauthorised = admin
        .clone()
        .list_dead_letters(ListDeadLettersRequest::default())
        .await
        .expect_err("operator API needs the internal credential");
    assert_eq!(unauthorised.code(), Code::PermissionDenied);
    let dead_letters = |destination: String| {
        let mut admin = admin.clone();
        let request = internal(
            &prefix,
            ListDeadLettersRequest {
                destination,
                ..Default::default()
            },
        );
        async move {
            admin
                .list_dead_letters(request)
                .await
                .expect("dead letters")
                .into_inner()
                .dead_letters
        }
    };
    let start = Instant::now();
    let refused = loop {
        let letters = dead_letters(a.origin.clone()).await;
        if !letters.is_empty() || start.elapsed() > Duration::from_secs(30) {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].last_error.contains("PermissionDenied"),
        "{refused:?}"
    );
    assert_eq!(refused[0].job.as_ref().expect("job").destination, a.origin);

    // A answered, so it is healthy; a destination nobody listens on is backing off.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let jetstream = async_nats::jetstream::new(nats);
    let now = mzchat_client::statements::unix_now();
    let job = mzchat_proto::federation::FederationJob {
        id: uuid::Uuid::now_v7().to_string(),
        destination: nowhere.clone(),
        created_at: Some(prost_types::Timestamp {
            seconds: now,
            nanos: 0,
        }),
        expires_at: Some(prost_types::Timestamp {
            seconds: now + 3,
            nanos: 0,
        }),
        kind: Some(mzchat_proto::federation::federation_job::Kind::VerifyUser(
            mzchat_proto::federation::VerifyUserJob {
                user_id: alice.identity().user_id(),
                follow_up: false,
            },
        )),
    };
    use prost::Message;
    jetstream
        .publish(
            format!("{prefix}.federation.v1.job.verify_user"),
            job.encode_to_vec().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    let start = Instant::now();
    let expired = loop {
        let letters = dead_letters(nowhere.clone()).await;
        if !letters.is_empty() || start.elapsed() > Duration::from_secs(30) {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(expired.len(), 1, "the job outlived its TTL: {expired:?}");
    assert!(expired[0].last_error.contains("expire"), "{expired:?}");
    let destinations = admin
        .clone()
        .list_destinations(internal(&prefix, ListDestinationsRequest::default()))
        .await
        .expect("destinations")
        .into_inner()
        .destinations;
    let health = |origin: &str| {
        destinations
            .iter()
            .find(|d| d.origin == origin)
            .map(|d| d.health())
    };
    assert_eq!(
        health(&a.origin),
        Some(DestinationHealth::Healthy),
        "{destinations:?}"
    );
    assert!(
        matches!(
            health(&nowhere),
            Some(DestinationHealth::BackingOff | DestinationHealth::Down)
        ),
        "{destinations:?}"
    );

    // A lifts its ban on B; the operator retries the dead letter and alice is verified.
    a.stop();
    a.flags
        .retain(|f| *f != "--federation-deny" && *f != b.origin);
    a.resume();
    admin
        .clone()
        .retry_dead_letter(internal(
            &prefix,
            RetryDeadLetterRequest {
                id: refused[0].id.clone(),
            },
        ))
        .await
        .expect("retry");
    wait_for_account(&alice, &b.origin, Duration::from_secs(30), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;
    assert!(dead_letters(a.origin.clone()).await.is_empty());
    let status = admin
        .clone()
        .retry_dead_letter(internal(
            &prefix,
            RetryDeadLetterRequest {
                id: refused[0].id.clone(),
            },
        ))
        .await
        .expect_err("already retried");
    assert_eq!(status.code(), Code::NotFound);
    a.remove().await;
    b.remove().await;
}
