//! Several federation-sync replicas sharing one homeserver's jobs.

use super::*;

/// Two federation-sync replicas share B's jobs with no assignment; killing one in the middle
/// of a batch loses nothing (what it had taken comes back to the other after the ack wait),
/// every job takes effect once, and A being down never delays jobs for C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_federation_sync_replicas_share_jobs_and_survive_a_kill() {
    const USERS: usize = 40;
    let mut a = Homeserver::start(Backend::PostgresNats, &[]);
    let b = Homeserver::start(Backend::PostgresNats, &[]);
    let c = Homeserver::start(Backend::PostgresNats, &[]);
    let mut second = b.extra_process("federation-sync");
    let mut users = Vec::new();
    for i in 0..USERS {
        let u = user(&a.origin, &format!("device{i}"));
        u.login(&a.origin, None, "").await.expect("registered at A");
        users.push(u);
    }
    a.stop();
    // Shadow logins on B queue one VerifyUser each; A is down, so both replicas take jobs and
    // park them. The second replica is killed as soon as it has taken its first job, with the
    // rest of what it pulled unsettled.
    let users = std::sync::Arc::new(users);
    let logins = {
        let (users, origin) = (users.clone(), b.origin.clone());
        tokio::spawn(async move {
            for u in users.iter() {
                u.login(&origin, None, "")
                    .await
                    .expect("shadow login on B while A is down");
            }
        })
    };
    let took_jobs = |log: String| log.matches("federation call failed; will retry").count();
    let start = Instant::now();
    while took_jobs(second.log_text()) == 0 && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.kill();
    let taken = took_jobs(second.log_text());
    assert!(
        taken > 0,
        "the second replica took jobs: {}",
        second.log_text()
    );
    logins.await.expect("logins");
    // Logins can be quick enough for the second replica to pull every job first; then the
    // first gets them once the killed replica's ack wait runs out.
    let first = || took_jobs(b.daemon.as_ref().expect("B").log_text());
    let start = Instant::now();
    while first() == 0 && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(first() > 0, "the first replica took jobs too");

    // A user homed on C is verified at once, whatever A's backlog.
    let carol = user(&c.origin, "laptop");
    carol
        .login(&c.origin, None, "")
        .await
        .expect("carol at home");
    carol.login(&b.origin, None, "").await.expect("carol on B");
    wait_for_account(&carol, &b.origin, Duration::from_secs(10), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;

    a.resume();
    let start = Instant::now();
    for u in users.iter() {
        wait_for_account(u, &b.origin, Duration::from_secs(90), |acc| {
            acc.verification() == Verification::Verified
        })
        .await;
    }
    eprintln!(
        "{USERS} shadow accounts verified {:?} after A came back (the killed replica had failed {taken} calls)",
        start.elapsed()
    );

    // Once in effect: one delegation token per user at A, one finished job per user at B.
    use sea_orm::{ConnectionTrait, Statement};
    let db = sea_orm::Database::connect(database_url())
        .await
        .expect("postgres");
    let count = |sql: String| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(sea_orm::DbBackend::Postgres, sql))
                .await
                .expect("query")
                .expect("row");
            row.try_get_by_index::<i64>(0).expect("count")
        }
    };
    let tokens = count(format!(
        "SELECT count(*) FROM \"{}\".push_delegation_tokens",
        a.schema("identity")
    ))
    .await;
    assert_eq!(tokens, USERS as i64, "one delegation token per user");
    let done = count(format!(
        "SELECT count(*) FROM \"{}\".jobs WHERE destination = '{}' AND state = 'done'",
        b.schema("federation"),
        a.origin
    ))
    .await;
    assert_eq!(done, USERS as i64, "one finished VerifyUser per user");
    let dead = count(format!(
        "SELECT count(*) FROM \"{}\".dead_letters",
        b.schema("federation")
    ))
    .await;
    assert_eq!(dead, 0);
    a.remove().await;
    b.remove().await;
    c.remove().await;
}
