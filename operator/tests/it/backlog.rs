//! The job backlog read from a real NATS (make services-up), as mzchatd lays out its streams.

use async_nats::jetstream::{self, stream::RetentionPolicy};
use mzchat_operator::backlog::{connect, jobs_waiting};

#[tokio::test]
async fn the_backlog_is_the_jobs_waiting_in_the_work_queue() {
    let url =
        std::env::var("MZCHAT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let prefix = format!("oplog{}", std::process::id());
    let nats = connect(&format!("nats://127.0.0.1:1, {url}"), None)
        .await
        .expect("connects through the live server of the list");
    let js = jetstream::new(nats.clone());
    let stream = format!("{prefix}_federation-jobs");
    js.create_stream(jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{prefix}.federation.v1.job.>")],
        retention: RetentionPolicy::WorkQueue,
        ..Default::default()
    })
    .await
    .expect("stream");
    assert_eq!(jobs_waiting(&nats, &prefix).await, Ok(0));
    for n in 0..7 {
        js.publish(
            format!("{prefix}.federation.v1.job.verify_user"),
            format!("job {n}").into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    }
    assert_eq!(jobs_waiting(&nats, &prefix).await, Ok(7));
    assert!(
        jobs_waiting(&nats, "nosuchprefix").await.is_err(),
        "a missing stream is an error, not an empty backlog"
    );
    js.delete_stream(&stream).await.expect("cleanup");
}
