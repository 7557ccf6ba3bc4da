//! The in-process bus of the one-process mode.
//!
//! It keeps nothing itself: durability comes from the outbox, which hands a message over with
//! `publish` and deletes it only when `publish` returns Ok, and `publish` returns Ok only once
//! every local consumer of the message has acknowledged (or terminated) it. A consumer that
//! naks makes `publish` fail with `Redeliver`, so the outbox keeps the message and offers it
//! again after the delay; consumers that already acknowledged it are not asked twice.
//!
//! "Every consumer" means every consumer registered when the message is offered, so a process
//! registers all its consumers before it starts its outbox relays (as `mzchatd` does).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{
    Bus, BusError, ConsumerSpec, Delivery, Message, Settle, StreamSpec, subject::subject_matches,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ack,
    Nak(Duration),
    Term,
}

struct Stream {
    name: &'static str,
    subjects: Vec<String>,
    work_queue: bool,
}

struct Consumer {
    stream: &'static str,
    durable: String,
    filter: String,
    max_deliver: u64,
    ack_wait: Duration,
    ordered: bool,
    tx: mpsc::UnboundedSender<Delivery>,
}

/// Messages a live subscriber may lag behind before it loses some.
const LIVE_BUFFER: usize = 1024;

impl State {
    /// Hands a message to every live subscriber whose pattern matches; a full subscriber loses
    /// it, a closed one is forgotten.
    fn fan_out(&mut self, message: &Message) {
        self.listeners.retain(|(pattern, tx)| {
            if !subject_matches(pattern, &message.subject) {
                return !tx.is_closed();
            }
            !matches!(
                tx.try_send(message.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }
}

/// A consumer a message goes to, copied out of the lock.
struct Target {
    durable: String,
    max_deliver: u64,
    ack_wait: Duration,
    ordered: bool,
    tx: mpsc::UnboundedSender<Delivery>,
}

#[derive(Default)]
struct State {
    streams: Vec<Stream>,
    consumers: Vec<Consumer>,
    /// Live subscribers: pattern and channel.
    listeners: Vec<(String, mpsc::Sender<Message>)>,
    /// Per message id: consumers that settled it, and attempts per consumer. Entries go once
    /// the message is fully settled.
    settled: HashMap<String, HashSet<String>>,
    attempts: HashMap<(String, String), u64>,
}

/// In-process implementation of [`Bus`].
#[derive(Clone, Default)]
pub struct LocalBus {
    state: Arc<Mutex<State>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the state itself stays consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A delivery handed to one consumer, awaiting its outcome.
struct Pending {
    durable: String,
    outcome: oneshot::Receiver<Outcome>,
    ack_wait: Duration,
    ordered: bool,
    last_attempt: bool,
}

#[async_trait]
impl Bus for LocalBus {
    async fn ensure_stream(&self, spec: &StreamSpec) -> Result<(), BusError> {
        let mut state = self.lock();
        if !state.streams.iter().any(|s| s.name == spec.name) {
            state.streams.push(Stream {
                name: spec.name,
                subjects: spec.subjects.clone(),
                work_queue: spec.work_queue,
            });
        }
        Ok(())
    }

    async fn publish(&self, message: Message) -> Result<(), BusError> {
        let pending = {
            let mut state = self.lock();
            let (stream, work_queue) = state
                .streams
                .iter()
                .find(|s| {
                    s.subjects
                        .iter()
                        .any(|p| subject_matches(p, &message.subject))
                })
                .map(|s| (s.name, s.work_queue))
                .ok_or_else(|| BusError::NoStream(message.subject.clone()))?;
            let settled = state.settled.get(&message.id).cloned().unwrap_or_default();
            let targets: Vec<Target> = state
                .consumers
                .iter()
                .filter(|c| c.stream == stream && subject_matches(&c.filter, &message.subject))
                .map(|c| Target {
                    durable: c.durable.clone(),
                    max_deliver: c.max_deliver,
                    ack_wait: c.ack_wait,
                    ordered: c.ordered,
                    tx: c.tx.clone(),
                })
                .collect();
            if targets.is_empty() {
                if work_queue {
                    // A job waits for its worker (in the outbox), as JetStream would keep it.
                    return Err(BusError::NoConsumer(message.subject.clone()));
                }
                // A fact nobody consumes durably: only live subscribers see it.
                state.fan_out(&message);
                return Ok(());
            }
            let mut pending = Vec::new();
            for Target {
                durable,
                max_deliver,
                ack_wait,
                ordered,
                tx,
            } in targets
            {
                if settled.contains(&durable) {
                    continue;
                }
                let attempt = state
                    .attempts
                    .entry((message.id.clone(), durable.clone()))
                    .or_insert(0);
                *attempt += 1;
                let (outcome_tx, outcome) = oneshot::channel();
                let delivery = Delivery {
                    subject: message.subject.clone(),
                    id: Some(message.id.clone()),
                    payload: message.payload.clone(),
                    headers: message.headers.clone(),
                    attempt: *attempt,
                    settle: Settle::Local(Some(outcome_tx)),
                };
                let last_attempt = *attempt >= max_deliver;
                if tx.send(delivery).is_err() {
                    // Its task ended: forget it, and keep the message until it comes back.
                    tracing::warn!(consumer = %durable, "in-process consumer stopped");
                    state.consumers.retain(|c| c.durable != durable);
                    return Err(BusError::NoConsumer(message.subject.clone()));
                }
                pending.push(Pending {
                    durable,
                    outcome,
                    ack_wait,
                    ordered,
                    last_attempt,
                });
            }
            pending
        };

        let mut retry_after: Option<Duration> = None;
        let mut hold_subject = false;
        for p in pending {
            let outcome = match tokio::time::timeout(p.ack_wait, p.outcome).await {
                Ok(Ok(outcome)) => outcome,
                // Dropped unsettled, or not settled within ack_wait: redeliver at once.
                Ok(Err(_)) | Err(_) => Outcome::Nak(Duration::ZERO),
            };
            let done = match outcome {
                Outcome::Ack | Outcome::Term => true,
                Outcome::Nak(_) if p.last_attempt => {
                    tracing::warn!(
                        subject = %message.subject,
                        id = %message.id,
                        consumer = %p.durable,
                        "message reached max deliveries; dropped for this consumer"
                    );
                    true
                }
                Outcome::Nak(delay) => {
                    retry_after = Some(retry_after.map_or(delay, |d| d.min(delay)));
                    hold_subject |= p.ordered;
                    false
                }
            };
            if done {
                self.lock()
                    .settled
                    .entry(message.id.clone())
                    .or_default()
                    .insert(p.durable);
            }
        }
        match retry_after {
            Some(after) => Err(BusError::Redeliver {
                after,
                hold_subject,
            }),
            None => {
                let mut state = self.lock();
                state.settled.remove(&message.id);
                state.attempts.retain(|(id, _), _| id != &message.id);
                state.fan_out(&message);
                Ok(())
            }
        }
    }

    async fn pending(&self, spec: &ConsumerSpec) -> Result<u64, BusError> {
        // Messages handed to the consumer and not settled by it (publish waits for them).
        let state = self.lock();
        let unsettled = state
            .attempts
            .keys()
            .filter(|(id, durable)| {
                durable == &spec.durable
                    && !state.settled.get(id).is_some_and(|s| s.contains(durable))
            })
            .count();
        Ok(unsettled as u64)
    }

    async fn consume(&self, spec: ConsumerSpec) -> Result<mpsc::Receiver<Delivery>, BusError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        {
            let mut state = self.lock();
            if !state.streams.iter().any(|s| s.name == spec.stream) {
                return Err(BusError::NoStream(spec.stream.to_owned()));
            }
            state.consumers.retain(|c| c.durable != spec.durable);
            state.consumers.push(Consumer {
                stream: spec.stream,
                durable: spec.durable,
                filter: spec.filter,
                max_deliver: spec.max_deliver.max(1),
                ordered: spec.ordered,
                ack_wait: spec.ack_wait,
                tx,
            });
        }
        // Bounded on the consumer side like a JetStream pull consumer's batch.
        let (out_tx, out_rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(delivery) = rx.recv().await {
                if out_tx.send(delivery).await.is_err() {
                    break;
                }
            }
        });
        Ok(out_rx)
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn publish_ephemeral(
        &self,
        subject: &str,
        payload: bytes::Bytes,
    ) -> Result<(), BusError> {
        let message = Message {
            subject: subject.to_owned(),
            id: String::new(),
            payload,
            headers: vec![],
        };
        self.lock().fan_out(&message);
        Ok(())
    }

    async fn subscribe(&self, pattern: &str) -> Result<mpsc::Receiver<Message>, BusError> {
        let (tx, rx) = mpsc::channel(LIVE_BUFFER);
        self.lock().listeners.push((pattern.to_owned(), tx));
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(id: &str) -> Message {
        Message {
            subject: "identity.v1.account.registered".into(),
            id: id.into(),
            payload: Bytes::from_static(b"x"),
            headers: vec![],
        }
    }

    async fn bus_with_stream() -> LocalBus {
        let bus = LocalBus::new();
        bus.ensure_stream(&StreamSpec {
            name: "identity",
            subjects: vec!["identity.v1.>".into()],
            work_queue: false,
            max_age: Duration::from_secs(60),
        })
        .await
        .expect("stream");
        bus
    }

    fn spec(durable: &str) -> ConsumerSpec {
        ConsumerSpec {
            stream: "identity",
            durable: durable.into(),
            filter: "identity.v1.>".into(),
            max_deliver: 3,
            ack_wait: Duration::from_secs(5),
            ordered: true,
        }
    }

    #[tokio::test]
    async fn a_job_without_a_worker_stays_with_the_caller_and_a_fact_reaches_live_subscribers() {
        let bus = bus_with_stream().await;
        bus.ensure_stream(&StreamSpec {
            name: "jobs",
            subjects: vec!["jobs.v1.>".into()],
            work_queue: true,
            max_age: Duration::from_secs(60),
        })
        .await
        .expect("stream");
        let job = Message {
            subject: "jobs.v1.do".into(),
            ..message("j")
        };
        assert!(matches!(
            bus.publish(job).await,
            Err(BusError::NoConsumer(_))
        ));
        let mut live = bus.subscribe("identity.v1.>").await.expect("subscribe");
        assert_eq!(bus.publish(message("1")).await, Ok(()));
        assert_eq!(live.recv().await.expect("live").id, "1");
        assert!(matches!(
            bus.publish(Message {
                subject: "other.v1.x".into(),
                ..message("2")
            })
            .await,
            Err(BusError::NoStream(_))
        ));
    }

    #[tokio::test]
    async fn publish_completes_only_when_every_consumer_acknowledged() {
        let bus = bus_with_stream().await;
        let mut a = bus.consume(spec("a")).await.expect("consume");
        let mut b = bus.consume(spec("b")).await.expect("consume");
        let publisher = tokio::spawn({
            let bus = bus.clone();
            async move { bus.publish(message("1")).await }
        });
        a.recv().await.expect("a gets it").ack().await.expect("ack");
        let second = b.recv().await.expect("b gets it");
        assert!(!publisher.is_finished());
        // Lag: a has settled the message (once the publisher has taken its answer), b has not.
        for _ in 0..100 {
            if bus.pending(&spec("a")).await == Ok(0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(bus.pending(&spec("a")).await, Ok(0));
        assert_eq!(bus.pending(&spec("b")).await, Ok(1));
        second.nak(Duration::from_millis(5)).await.expect("nak");
        assert_eq!(
            publisher.await.expect("join"),
            Err(BusError::Redeliver {
                after: Duration::from_millis(5),
                hold_subject: true,
            })
        );
        // Offered again: only b, which has not acknowledged, sees it, as its second attempt.
        let publisher = tokio::spawn({
            let bus = bus.clone();
            async move { bus.publish(message("1")).await }
        });
        let again = b.recv().await.expect("redelivered");
        assert_eq!(again.attempt, 2);
        again.ack().await.expect("ack");
        assert_eq!(publisher.await.expect("join"), Ok(()));
        assert!(a.try_recv().is_err());
        assert_eq!(bus.pending(&spec("b")).await, Ok(0));
    }

    #[tokio::test]
    async fn a_dropped_delivery_is_redelivered_and_max_deliver_ends_it() {
        let bus = bus_with_stream().await;
        let mut a = bus.consume(spec("a")).await.expect("consume");
        for attempt in 1..=3 {
            let publisher = tokio::spawn({
                let bus = bus.clone();
                async move { bus.publish(message("1")).await }
            });
            let delivery = a.recv().await.expect("delivered");
            assert_eq!(delivery.attempt, attempt);
            drop(delivery);
            let result = publisher.await.expect("join");
            if attempt < 3 {
                assert!(matches!(result, Err(BusError::Redeliver { .. })));
            } else {
                assert_eq!(result, Ok(()), "dropped after max_deliver");
            }
        }
    }
}
