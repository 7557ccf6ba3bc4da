use std::{collections::HashMap, sync::Arc, time::Duration};

use mzchat_platform::{
    bus::{Bus, ConsumerSpec, Delivery, LocalBus, StreamSpec},
    db::{self, DatabaseTarget},
    outbox::{Outbox, OutboxEvent, OutboxRelay},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use sea_orm_migration::prelude::*;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migration_table_name() -> sea_orm::DynIden {
        "outbox_test_migrations".into_iden()
    }
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateOutbox)]
    }
}

#[derive(DeriveMigrationName)]
struct CreateOutbox;

#[async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        mzchat_platform::outbox::migration::create_outbox_table(manager).await
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

fn database_url() -> String {
    std::env::var("MZCHAT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn local_bus(durable: &str) -> (Arc<LocalBus>, mpsc::Receiver<Delivery>) {
    let bus = Arc::new(LocalBus::new());
    bus.ensure_stream(&StreamSpec {
        name: "test",
        subjects: vec!["test.v1.>".into()],
        work_queue: false,
        max_age: Duration::from_secs(3600),
    })
    .await
    .expect("stream");
    let deliveries = bus
        .consume(ConsumerSpec {
            stream: "test",
            durable: durable.into(),
            filter: "test.v1.>".into(),
            max_deliver: 5,
            ack_wait: Duration::from_secs(5),
            ordered: true,
        })
        .await
        .expect("consume");
    (bus, deliveries)
}

fn event(n: usize) -> OutboxEvent {
    let mut event = OutboxEvent::new("test.v1.thing.happened", &prost_types::Timestamp::default());
    event.payload = n.to_string().into_bytes();
    event
}

fn number(delivery: &Delivery) -> usize {
    String::from_utf8_lossy(&delivery.payload)
        .parse()
        .expect("number payload")
}

fn start_relay(
    db: &DatabaseConnection,
    bus: Arc<LocalBus>,
    outbox: &Outbox,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let relay = OutboxRelay::new(db.clone(), bus, outbox, "test");
    (stop.clone(), tokio::spawn(relay.run(stop)))
}

/// PostgreSQL assigns `seq` at insert, not at commit: enqueueing takes turns until commit, so a
/// later transaction's event is never published before an earlier, still open one's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_leave_in_commit_order_on_postgres() {
    let schema = unique("outbox_");
    let target = DatabaseTarget::Postgres {
        url: mzchat_platform::Secret::new(database_url()),
        schema: schema.clone(),
    };
    let db = db::connect(&target, 5)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is needed (make services-up): {e}"));
    db::migrate::<Migrator>(&db).await.expect("migrate");
    let outbox = Outbox::new();
    let (bus, mut deliveries) = local_bus("order").await;
    let (stop, relay) = start_relay(&db, bus, &outbox);

    let first = db.begin().await.expect("begin");
    outbox.enqueue(&first, event(1)).await.expect("enqueue 1");
    // A second transaction enqueues while the first is open: it waits its turn, so it cannot
    // commit (and be published) before the first.
    let second = tokio::spawn({
        let (db, outbox) = (db.clone(), outbox.clone());
        async move {
            let txn = db.begin().await.expect("begin");
            outbox.enqueue(&txn, event(2)).await.expect("enqueue 2");
            txn.commit().await.expect("commit 2");
            outbox.wake();
        }
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        !second.is_finished(),
        "the later transaction waits for the earlier one"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), deliveries.recv())
            .await
            .is_err(),
        "nothing is published before the first transaction commits"
    );
    first.commit().await.expect("commit 1");
    outbox.wake();
    second.await.expect("second transaction");
    let mut order = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(Duration::from_secs(5), deliveries.recv())
            .await
            .expect("delivered after commit")
            .expect("delivery");
        order.push(number(&delivery));
        delivery.ack().await.expect("ack");
    }
    assert_eq!(order, [1, 2]);
    stop.cancel();
    relay.await.ok();
    db.execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("drop");
}

/// The one-process mode keeps nothing in memory that matters: a relay (and its in-process bus)
/// lost mid-stream leaves every unacknowledged event in the outbox for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_bus_lost_mid_stream_loses_no_event() {
    const EVENTS: usize = 200;
    let dir = std::env::temp_dir().join(unique("outbox-crash-"));
    let target = DatabaseTarget::Sqlite {
        path: dir.join("test.db"),
    };
    let db = db::connect(&target, 1).await.expect("sqlite");
    db::migrate::<Migrator>(&db).await.expect("migrate");
    let outbox = Outbox::new();
    for n in 0..EVENTS {
        let txn = db.begin().await.expect("begin");
        outbox.enqueue(&txn, event(n)).await.expect("enqueue");
        txn.commit().await.expect("commit");
    }

    let mut seen: HashMap<usize, usize> = HashMap::new();
    let (bus, mut deliveries) = local_bus("crash").await;
    let (_stop, relay) = start_relay(&db, bus, &outbox);
    while seen.len() < EVENTS / 4 {
        let delivery = deliveries.recv().await.expect("delivery");
        *seen.entry(number(&delivery)).or_default() += 1;
        delivery.ack().await.expect("ack");
    }
    // The crash: relay and bus vanish without any chance to clean up.
    relay.abort();
    relay.await.ok();
    drop(deliveries);

    let (bus, mut deliveries) = local_bus("crash").await;
    let (stop, relay) = start_relay(&db, bus, &outbox);
    let mut order = Vec::new();
    while seen.len() < EVENTS {
        let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {EVENTS} events after the restart", seen.len()))
            .expect("delivery");
        let n = number(&delivery);
        order.push(n);
        *seen.entry(n).or_default() += 1;
        delivery.ack().await.expect("ack");
    }
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "in order after the restart: {order:?}"
    );
    // At least once: only the event in flight at the crash may come twice.
    assert!(seen.values().filter(|&&c| c > 1).count() <= 1, "{seen:?}");
    stop.cancel();
    relay.await.ok();
    let left = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM outbox",
        ))
        .await
        .expect("count")
        .and_then(|row| row.try_get::<i64>("", "n").ok());
    assert_eq!(
        left,
        Some(0),
        "the outbox is empty once everything was acknowledged"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A durable consumer's lag on JetStream: messages not yet acknowledged, down to none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_consumer_reports_its_lag() {
    use mzchat_platform::bus::{ConsumerSpec, Message, NatsBus, StreamSpec};
    let url =
        std::env::var("MZCHAT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let prefix = unique("lag");
    let bus = NatsBus::connect(&url, &prefix, 1).await.expect("nats");
    bus.ensure_stream(&StreamSpec {
        name: "identity",
        subjects: vec!["identity.v1.>".into()],
        work_queue: false,
        max_age: Duration::from_secs(3600),
    })
    .await
    .expect("stream");
    let spec = ConsumerSpec {
        stream: "identity",
        durable: "lagging".into(),
        filter: "identity.v1.>".into(),
        max_deliver: 5,
        ack_wait: Duration::from_secs(30),
        ordered: false,
    };
    let mut deliveries = bus.consume(spec.clone()).await.expect("consume");
    for n in 0..3 {
        bus.publish(Message {
            subject: "identity.v1.account.registered".into(),
            id: format!("lag-{n}"),
            payload: bytes::Bytes::from_static(b"x"),
            headers: vec![],
        })
        .await
        .expect("publish");
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(deliveries.recv().await.expect("delivered"));
    }
    assert_eq!(
        bus.pending(&spec).await.expect("lag"),
        3,
        "delivered, none acknowledged"
    );
    for delivery in got {
        delivery.ack().await.expect("ack");
    }
    let start = std::time::Instant::now();
    while bus.pending(&spec).await.expect("lag") != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the lag never went to 0"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.expect("nats"));
    let _ = js
        .delete_stream(format!("{}_IDENTITY", prefix.to_ascii_uppercase()))
        .await;
}

/// An event the bus would refuse (NATS takes 1 MiB) must not be stored: it would block its
/// subject for good. The change fails instead, and the events beside it still flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_too_large_for_the_bus_fails_its_change() {
    let dir = std::env::temp_dir().join(unique("outbox-large-"));
    let target = DatabaseTarget::Sqlite {
        path: dir.join("test.db"),
    };
    let db = db::connect(&target, 1).await.expect("sqlite");
    db::migrate::<Migrator>(&db).await.expect("migrate");
    let outbox = Outbox::new();
    let mut huge = event(0);
    huge.payload = vec![b'x'; mzchat_platform::outbox::MAX_EVENT_BYTES + 1];
    let txn = db.begin().await.expect("begin");
    outbox
        .enqueue_many(&txn, [&event(1), &huge])
        .await
        .expect_err("refused");
    txn.rollback().await.expect("rollback");
    let txn = db.begin().await.expect("begin");
    outbox.enqueue(&txn, event(2)).await.expect("enqueue");
    txn.commit().await.expect("commit");

    let (bus, mut deliveries) = local_bus("large").await;
    let (stop, relay) = start_relay(&db, bus, &outbox);
    let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.recv())
        .await
        .expect("the next event flows")
        .expect("delivery");
    assert_eq!(
        number(&delivery),
        2,
        "nothing of the refused change was stored"
    );
    delivery.ack().await.expect("ack");
    stop.cancel();
    relay.await.ok();
    std::fs::remove_dir_all(dir).ok();
}
