//! The transactional outbox: a state change and the events it causes commit together, and a
//! relay publishes them afterwards (at least once; consumers deduplicate by event id). Nothing is
//! lost while the bus is down: rows stay until the bus has taken them.

mod entity;
pub mod migration;
mod relay;

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use tokio::sync::Notify;

pub use relay::OutboxRelay;

use crate::telemetry;

/// An event to publish once the surrounding transaction commits.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Relative subject, e.g. `identity.v1.account.registered`.
    pub subject: String,
    /// Event id (UUIDv7), the deduplication key.
    pub id: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl OutboxEvent {
    /// An event carrying `message`, with the current trace context in its headers.
    pub fn new<M: prost::Message>(subject: impl Into<String>, message: &M) -> Self {
        OutboxEvent {
            subject: subject.into(),
            id: uuid::Uuid::now_v7().to_string(),
            payload: message.encode_to_vec(),
            headers: telemetry::current_trace_headers(),
        }
    }
}

/// Largest event payload accepted, well under NATS's default 1 MiB max_payload (headers and
/// the subject travel with it).
pub const MAX_EVENT_BYTES: usize = 512 * 1024;

/// Writes events into the outbox table of the caller's transaction and wakes the relay after
/// commit.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `event` through `conn`, which should be the transaction of the state change.
    pub async fn enqueue<C: ConnectionTrait>(
        &self,
        conn: &C,
        event: OutboxEvent,
    ) -> Result<(), DbErr> {
        self.enqueue_many(conn, [&event]).await
    }

    /// Stores `events`, in order, with one statement.
    ///
    /// On PostgreSQL transactions enqueue one after another (the statement takes a lock held
    /// until commit), so `seq` order is commit order and the relay never overtakes a transaction
    /// that inserted earlier but commits later. One lock per schema, i.e. per service.
    pub async fn enqueue_many<'a, C: ConnectionTrait>(
        &self,
        conn: &C,
        events: impl IntoIterator<Item = &'a OutboxEvent>,
    ) -> Result<(), DbErr> {
        let columns = ["event_id", "subject", "payload", "headers", "created_at"];
        let now = crate::db::now_millis();
        let mut values: Vec<Value> = Vec::new();
        for event in events {
            // NATS refuses messages over its max_payload (1 MiB by default); one stored here
            // would block its subject for good, so the change that made it fails instead.
            if event.payload.len() > MAX_EVENT_BYTES {
                tracing::error!(subject = %event.subject, bytes = event.payload.len(), "event too large for the bus; change refused");
                return Err(DbErr::Custom(format!(
                    "event on {} is {} bytes, over the {MAX_EVENT_BYTES} bytes the bus takes",
                    event.subject,
                    event.payload.len()
                )));
            }
            let headers =
                serde_json::to_string(&event.headers).map_err(|e| DbErr::Custom(e.to_string()))?;
            values.extend([
                event.id.clone().into(),
                event.subject.clone().into(),
                event.payload.clone().into(),
                headers.into(),
                now.into(),
            ]);
        }
        if values.is_empty() {
            return Ok(());
        }
        let backend = conn.get_database_backend();
        let rows = values.len() / columns.len();
        let sql = crate::db::locked_insert_sql(backend, "outbox", "outbox", &columns, rows);
        conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .map(|_| ())
    }

    /// Tells the relay there is something to publish; call after the transaction commits.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn notifier(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}
