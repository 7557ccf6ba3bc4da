//! The delivery state machine against a real (SQLite) schema: backoff, one probe at a time,
//! success waking a destination's jobs, leases. The PostgreSQL path (row locks, SKIP LOCKED)
//! runs in mzchatd's two-replica federation test.

use mzchat_federation_migration::Migrator;
use mzchat_platform::db::{self, DatabaseTarget};
use sea_orm::DatabaseConnection;

use super::{
    destinations::{self, Gate, Health, PROBE_LEASE_MS},
    jobs::{self, JobRecord},
};

const A: &str = "https://a.example";

async fn database() -> (DatabaseConnection, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("mzchat-federation-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("dir");
    let target = DatabaseTarget::Sqlite {
        path: dir.join("federation.db"),
    };
    let db = db::connect(&target, 1).await.expect("sqlite");
    db::migrate::<Migrator>(&db).await.expect("migrations");
    (db, dir)
}

fn record<'a>(id: &'a str, destination: &'a str) -> JobRecord<'a> {
    JobRecord {
        id,
        kind: "verify_user",
        destination,
        payload: b"job",
        attempts: 0,
        expires_at: i64::MAX / 2,
    }
}

#[tokio::test]
async fn a_failing_destination_backs_off_and_is_probed_by_one_caller_at_a_time() {
    let (db, dir) = database().await;
    let now = 1_000_000;
    assert_eq!(
        destinations::gate(&db, A, now).await.expect("gate"),
        Gate::Go { probe: false }
    );

    let next = destinations::failed(&db, A, "UNAVAILABLE", false, now)
        .await
        .expect("failed");
    assert!((now + 1_000..=now + 1_200).contains(&next), "{next}");
    // Calls that were already in flight fail too, without lengthening the backoff.
    let again = destinations::failed(&db, A, "UNAVAILABLE", false, now + 10)
        .await
        .expect("failed");
    assert_eq!(again, next);
    assert_eq!(
        destinations::gate(&db, A, now + 500).await.expect("gate"),
        Gate::Wait(next)
    );

    // Backoff over: the first caller probes, the next one waits for the probe.
    let later = next + 1;
    assert_eq!(
        destinations::gate(&db, A, later).await.expect("gate"),
        Gate::Go { probe: true }
    );
    assert_eq!(
        destinations::gate(&db, A, later).await.expect("gate"),
        Gate::Wait(later + PROBE_LEASE_MS)
    );
    // A failed probe doubles the backoff.
    let after_probe = destinations::failed(&db, A, "UNAVAILABLE", true, later)
        .await
        .expect("failed");
    assert!(
        (later + 2_000..=later + 2_400).contains(&after_probe),
        "{after_probe}"
    );

    // Five failures in a row: down.
    let mut at = after_probe;
    for _ in 0..3 {
        at = destinations::failed(&db, A, "UNAVAILABLE", true, at)
            .await
            .expect("failed");
    }
    let rows = destinations::page(&db, None, 10).await.expect("page");
    assert_eq!(destinations::health(&rows[0]), Health::Down);
    assert_eq!(rows[0].consecutive_failures, 5);

    // An answer clears it, and says it was unhealthy so its waiting jobs are woken.
    assert!(
        destinations::succeeded(&db, A, at)
            .await
            .expect("succeeded")
    );
    assert_eq!(
        destinations::gate(&db, A, at).await.expect("gate"),
        Gate::Go { probe: false }
    );
    assert!(
        !destinations::succeeded(&db, A, at)
            .await
            .expect("succeeded")
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn jobs_are_run_by_one_lease_holder_at_a_time() {
    use jobs::{LEASE_MS, Outcome, lease_token};
    let (db, dir) = database().await;
    let now = db::now_millis();
    let waiting = |next_attempt_at| Outcome::Waiting {
        next_attempt_at,
        error: "UNAVAILABLE",
    };
    for (id, destination, next) in [
        ("due", A, now - 1),
        ("later", A, now + 60_000),
        ("elsewhere", "https://b.example", now + 60_000),
    ] {
        let token = lease_token();
        assert!(
            jobs::begin(&db, &record(id, destination), &token, now)
                .await
                .expect("begin")
        );
        assert!(
            jobs::settle(&db, &record(id, destination), &token, waiting(next), now)
                .await
                .expect("settle")
        );
    }
    // A redelivered job is recognised.
    assert!(
        !jobs::begin(&db, &record("due", A), &lease_token(), now)
            .await
            .expect("begin")
    );

    let first = lease_token();
    let claimed = jobs::claim_due(&db, now, 10, &first).await.expect("claim");
    assert_eq!(
        claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["due"]
    );
    assert!(
        jobs::claim_due(&db, now, 10, &lease_token())
            .await
            .expect("claim")
            .is_empty(),
        "leased"
    );
    // The lease runs out; another replica takes the job, and the first one's late outcome is
    // refused.
    let second = lease_token();
    let retaken = jobs::claim_due(&db, now + LEASE_MS + 1, 10, &second)
        .await
        .expect("claim");
    assert_eq!(retaken.len(), 1, "a dead replica's job comes back");
    let late = jobs::settle(&db, &record("due", A), &first, Outcome::Done, now)
        .await
        .expect("settle");
    assert!(!late, "a lost lease writes nothing");
    assert!(
        jobs::settle(&db, &record("due", A), &second, Outcome::Done, now)
            .await
            .expect("settle")
    );
    assert_eq!(
        jobs::state(&db, "due").await.expect("state").as_deref(),
        Some(jobs::DONE)
    );

    // The destination answers again: its waiting jobs are due now, others stay put.
    assert_eq!(jobs::wake_destination(&db, A, now).await.expect("wake"), 1);
    let woken = jobs::claim_due(&db, now, 10, &lease_token())
        .await
        .expect("claim");
    assert_eq!(
        woken.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["later"]
    );

    assert_eq!(
        jobs::prune(&db, now + 1).await.expect("prune"),
        1,
        "finished rows go"
    );
    assert_eq!(
        jobs::state(&db, "elsewhere")
            .await
            .expect("state")
            .as_deref(),
        Some(jobs::WAITING)
    );
    std::fs::remove_dir_all(dir).ok();
}
