//! The transactional outbox: a state change and the events it causes commit together, and a
//! relay publishes them afterwards (at least once; consumers deduplicate by event id). Nothing is
//! lost while the bus is down: rows stay until the bus has taken them.

mod entity;
pub mod migration;
mod relay;

use std::sync::Arc;

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbBackend, DbErr, Set};
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
        let headers =
            serde_json::to_string(&event.headers).map_err(|e| DbErr::Custom(e.to_string()))?;
        let now = crate::db::now_millis();
        if conn.get_database_backend() == DbBackend::Postgres {
            // Transactions enqueue one after another (the lock is held until commit), so `seq`
            // order is commit order and the relay never overtakes a transaction that inserted
            // earlier but commits later. One lock per schema, i.e. per service.
            conn.execute_unprepared(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.outbox'))",
            )
            .await?;
        }
        entity::ActiveModel {
            event_id: Set(event.id),
            subject: Set(event.subject),
            payload: Set(event.payload),
            headers: Set(headers),
            created_at: Set(now),
            not_before: Set(None),
            ..Default::default()
        }
        .insert(conn)
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
