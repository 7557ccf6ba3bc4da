//! The bus: facts (past-tense events) and jobs between services.
//!
//! Two implementations of one trait: NATS JetStream in production and an in-process bus for the
//! one-process mode. Callers use subjects relative to the configured prefix
//! (`identity.v1.account.registered` becomes `mzchat.identity.v1.account.registered`).
//! Publishing goes through the transactional outbox (`crate::outbox`), never straight from a
//! request handler.

mod consumer;
mod local;
pub(crate) mod nats;
pub mod streams;
mod subject;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use consumer::{HandlerError, consume_forever, run_consumer, sample_lag};
pub use local::LocalBus;
pub use nats::NatsBus;
pub use subject::subject_matches;

/// A message to publish. `id` is the event id, used for deduplication (`Nats-Msg-Id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub id: String,
    pub payload: Bytes,
    pub headers: Vec<(String, String)>,
}

/// A stream: the subjects one owning service publishes.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// Short name, e.g. `identity` or `federation-jobs`.
    pub name: &'static str,
    /// Relative subject patterns, e.g. `identity.v1.>`.
    pub subjects: Vec<String>,
    /// A work queue hands each message to one consumer and deletes it once acknowledged.
    pub work_queue: bool,
    /// How long messages are kept (limits retention).
    pub max_age: Duration,
}

/// A durable consumer; every process that consumes with the same `durable` shares the load.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: &'static str,
    pub durable: String,
    /// Relative subject filter.
    pub filter: String,
    pub max_deliver: u64,
    pub ack_wait: Duration,
    /// Deliver one message at a time per consumer, in order, and hold a subject back while one
    /// of its messages waits for redelivery. Work queues leave it off and run in parallel.
    pub ordered: bool,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BusError {
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    #[error("no stream takes subject {0}")]
    NoStream(String),
    #[error("no consumer yet for subject {0}")]
    NoConsumer(String),
    /// A consumer asked for the message again after `after`; `hold_subject` when it consumes
    /// in order, so later messages of the subject must wait too.
    #[error("a consumer asked for redelivery")]
    Redeliver { after: Duration, hold_subject: bool },
    #[error("bus error: {0}")]
    Other(String),
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Declares a stream; idempotent.
    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<(), BusError>;

    /// Publishes durably: returns once the bus has stored the message (JetStream) or every
    /// local consumer has acknowledged it (in-process). An error means the caller still owns
    /// the message and must try again.
    async fn publish(&self, message: Message) -> Result<(), BusError>;

    /// Starts a durable consumer. Deliveries arrive on the returned channel until it is
    /// dropped; the implementation reconnects and re-creates the consumer on its own.
    async fn consume(
        &self,
        spec: ConsumerSpec,
    ) -> Result<tokio::sync::mpsc::Receiver<Delivery>, BusError>;

    /// Messages the durable consumer has yet to settle (waiting, or delivered and not yet
    /// acknowledged): its lag.
    async fn pending(&self, spec: &ConsumerSpec) -> Result<u64, BusError>;

    /// Whether the bus is reachable now (readiness).
    async fn check(&self) -> Result<(), BusError>;

    /// Fire-and-forget (typing, presence pulses): never stored, lost when nobody listens.
    async fn publish_ephemeral(&self, subject: &str, payload: Bytes) -> Result<(), BusError>;

    /// Every message on subjects matching `pattern` from now on, durable or ephemeral, as it
    /// passes (no replay, no acks): the live feed of real-time fan-out. A subscriber that falls
    /// behind loses messages and must catch up from storage.
    async fn subscribe(
        &self,
        pattern: &str,
    ) -> Result<tokio::sync::mpsc::Receiver<Message>, BusError>;
}

/// One delivery of a message to a consumer. Settle it with `ack`, `nak` or `term`; dropping it
/// unsettled makes it due for redelivery.
pub struct Delivery {
    /// Relative subject.
    pub subject: String,
    pub id: Option<String>,
    pub payload: Bytes,
    pub headers: Vec<(String, String)>,
    /// 1 on the first delivery.
    pub attempt: u64,
    settle: Settle,
}

pub(crate) enum Settle {
    Nats(Box<async_nats::jetstream::Message>),
    Local(Option<tokio::sync::oneshot::Sender<local::Outcome>>),
}

/// What a handler sees of a delivery.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub subject: String,
    pub id: Option<String>,
    pub payload: Bytes,
    pub headers: Vec<(String, String)>,
    pub attempt: u64,
}

impl Delivery {
    pub fn envelope(&self) -> Envelope {
        Envelope {
            subject: self.subject.clone(),
            id: self.id.clone(),
            payload: self.payload.clone(),
            headers: self.headers.clone(),
            attempt: self.attempt,
        }
    }

    pub async fn ack(self) -> Result<(), BusError> {
        self.settle(local::Outcome::Ack).await
    }

    /// Asks for redelivery after `delay`.
    pub async fn nak(self, delay: Duration) -> Result<(), BusError> {
        self.settle(local::Outcome::Nak(delay)).await
    }

    /// Gives up on the message: never redelivered.
    pub async fn term(self) -> Result<(), BusError> {
        self.settle(local::Outcome::Term).await
    }

    async fn settle(mut self, outcome: local::Outcome) -> Result<(), BusError> {
        match &mut self.settle {
            Settle::Nats(message) => nats::settle(message, outcome).await,
            Settle::Local(sender) => {
                if let Some(sender) = sender.take() {
                    // The publisher may have given up waiting; nothing to do then.
                    let _ = sender.send(outcome);
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("subject", &self.subject)
            .field("id", &self.id)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}
