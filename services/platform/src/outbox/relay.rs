//! Moves outbox rows onto the bus, oldest first. A row is deleted only after the bus took it.
//! Rows of one subject keep their order: when one cannot be published, its subject is held back
//! (later rows of it wait) while other subjects go on.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Outbox, entity};
use crate::{
    bus::{Bus, BusError, Message},
    shared_metrics::{service, shared},
};

const BATCH: u64 = 100;
/// Safety net for rows written by other replicas (whose wake-ups this process does not see).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const NOT_READY_RETRY: Duration = Duration::from_secs(1);
/// How often the outbox's depth and age are measured (two small queries).
const DEPTH_EVERY: Duration = Duration::from_secs(5);

pub struct OutboxRelay {
    db: DatabaseConnection,
    bus: Arc<dyn Bus>,
    wake: Arc<Notify>,
    service: &'static str,
    /// Subject -> earliest next attempt, after a publish of it failed or was deferred.
    held: HashMap<String, Instant>,
}

enum Pass {
    /// Published everything that was due (maybe a full batch: go again at once).
    Done { full: bool },
    /// The bus is unreachable: back off.
    BusDown(BusError),
}

impl OutboxRelay {
    pub fn new(
        db: DatabaseConnection,
        bus: Arc<dyn Bus>,
        outbox: &Outbox,
        service: &'static str,
    ) -> Self {
        Self {
            db,
            bus,
            wake: outbox.notifier(),
            service,
            held: HashMap::new(),
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        let mut measured = Instant::now() - DEPTH_EVERY;
        loop {
            if measured.elapsed() >= DEPTH_EVERY {
                measured = Instant::now();
                if let Err(err) = self.measure_depth().await {
                    tracing::debug!(error = %err, "cannot measure the outbox");
                }
            }
            let wait = match self.pass().await {
                Ok(Pass::Done { full: true, .. }) => continue,
                Ok(Pass::Done { .. }) => {
                    backoff = Duration::from_millis(100);
                    self.next_due().unwrap_or(POLL_INTERVAL).min(POLL_INTERVAL)
                }
                Ok(Pass::BusDown(err)) => {
                    shared()
                        .outbox_publish_failures
                        .get_or_create(&service(self.service))
                        .inc();
                    tracing::warn!(service = self.service, error = %err, "outbox relay: bus unavailable, retrying");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    backoff
                }
                Err(err) => {
                    tracing::error!(service = self.service, error = %err, "outbox relay: database error");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    backoff
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Records how many events wait and how old the oldest is.
    async fn measure_depth(&self) -> Result<(), DbErr> {
        let oldest: Option<i64> = entity::Entity::find()
            .select_only()
            .column(entity::Column::CreatedAt)
            .order_by_asc(entity::Column::Seq)
            .into_tuple()
            .one(&self.db)
            .await?;
        let depth = entity::Entity::find().count(&self.db).await?;
        let label = service(self.service);
        shared()
            .outbox_depth
            .get_or_create(&label)
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        let age = oldest.map_or(0.0, |at| {
            (crate::db::now_millis() - at).max(0) as f64 / 1000.0
        });
        shared()
            .outbox_oldest_age_seconds
            .get_or_create(&label)
            .set(age);
        Ok(())
    }

    fn next_due(&self) -> Option<Duration> {
        let now = Instant::now();
        self.held
            .values()
            .map(|at| at.saturating_duration_since(now))
            .min()
    }

    async fn pass(&mut self) -> Result<Pass, DbErr> {
        let now = Instant::now();
        self.held.retain(|_, until| *until > now);
        let held: Vec<String> = self.held.keys().cloned().collect();
        let now_ms = crate::db::now_millis();
        let due = entity::Entity::find()
            .filter(entity::Column::Subject.is_not_in(held))
            .filter(
                Condition::any()
                    .add(entity::Column::NotBefore.is_null())
                    .add(entity::Column::NotBefore.lte(now_ms)),
            )
            .order_by_asc(entity::Column::Seq)
            .limit(BATCH);
        if crate::db::supports_row_locks(&self.db) {
            // The row lock makes several replicas' relays take turns on the same rows.
            let txn = self.db.begin().await?;
            let rows = due.lock_exclusive().all(&txn).await?;
            let (pass, done) = self.publish(&rows, &txn).await?;
            delete(&txn, done).await?;
            txn.commit().await?;
            Ok(pass)
        } else {
            // SQLite has one writer at a time: insert order is commit order.
            let rows = due.all(&self.db).await?;
            let db = self.db.clone();
            let (pass, done) = self.publish(&rows, &db).await?;
            delete(&db, done).await?;
            Ok(pass)
        }
    }

    async fn publish<C: ConnectionTrait>(
        &mut self,
        rows: &[entity::Model],
        conn: &C,
    ) -> Result<(Pass, Vec<i64>), DbErr> {
        let now = Instant::now();
        let mut done = Vec::new();
        for row in rows {
            if self.held.contains_key(&row.subject) {
                continue;
            }
            let headers: Vec<(String, String)> =
                serde_json::from_str(&row.headers).unwrap_or_default();
            let message = Message {
                subject: row.subject.clone(),
                id: row.event_id.clone(),
                payload: row.payload.clone().into(),
                headers,
            };
            match self.bus.publish(message).await {
                Ok(()) => {
                    shared()
                        .outbox_published
                        .get_or_create(&service(self.service))
                        .inc();
                    crate::shared_metrics::count_published(&row.subject);
                    if crate::db::supports_row_locks(conn) {
                        // Deleted when the relay's transaction commits.
                        done.push(row.seq);
                    } else {
                        // No surrounding transaction: forget the row at once, so a crash
                        // repeats at most the message in flight.
                        delete(conn, vec![row.seq]).await?;
                    }
                }
                Err(BusError::Redeliver {
                    after,
                    hold_subject: true,
                }) => {
                    self.held.insert(row.subject.clone(), now + after);
                }
                Err(BusError::Redeliver {
                    after,
                    hold_subject: false,
                }) => {
                    // Unordered consumers (work queues): only this message waits.
                    let not_before = crate::db::now_millis() + after.as_millis() as i64;
                    entity::Entity::update_many()
                        .col_expr(entity::Column::NotBefore, not_before.into())
                        .filter(entity::Column::Seq.eq(row.seq))
                        .exec(conn)
                        .await?;
                }
                Err(err @ (BusError::NoConsumer(_) | BusError::NoStream(_))) => {
                    tracing::debug!(service = self.service, error = %err, "outbox relay: not deliverable yet");
                    self.held.insert(row.subject.clone(), now + NOT_READY_RETRY);
                }
                Err(err) => return Ok((Pass::BusDown(err), done)),
            }
        }
        // A full batch means more may be waiting: go again at once.
        let full = rows.len() as u64 == BATCH;
        Ok((Pass::Done { full }, done))
    }
}

async fn delete<C: sea_orm::ConnectionTrait>(conn: &C, seqs: Vec<i64>) -> Result<(), DbErr> {
    if seqs.is_empty() {
        return Ok(());
    }
    entity::Entity::delete_many()
        .filter(entity::Column::Seq.is_in(seqs))
        .exec(conn)
        .await
        .map(|_| ())
}
