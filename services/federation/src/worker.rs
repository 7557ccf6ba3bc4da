//! The job runner. Jobs arrive from the work queue (any replica takes any job) or from the job
//! log when a retry falls due. A destination in backoff is not called: its jobs wait in the log
//! and the bus message is acknowledged, so one server being down never holds up the queue.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mzchat_platform::{
    Origin,
    bus::Delivery,
    db::now_millis,
    federation::{OriginPolicy, is_internal_address, jobs},
    outbox::{Outbox, OutboxEvent},
};
use mzchat_proto::federation::FederationJob;
use prost::Message;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};

use crate::{
    calls::{self, Effects, Failure},
    outbound::Outbound,
    store::{
        JobRow, dead_letters,
        destinations::{self, Gate},
        jobs::{self as log, JobRecord},
    },
};

/// A retry after our own signer failed.
const LOCAL_RETRY_MS: i64 = 5_000;
/// How often a healthy destination's last success is written down (not on every call).
const SUCCESS_RECORD_INTERVAL: Duration = Duration::from_secs(30);

pub struct Worker {
    db: DatabaseConnection,
    outbox: Outbox,
    outbound: Arc<Outbound>,
    policy: OriginPolicy,
    allow_http: bool,
    recorded_success: Mutex<HashMap<String, Instant>>,
}

/// How a job left the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Done,
    Waiting,
    Dead,
    /// Already handled by another delivery.
    Duplicate,
}

fn millis(ts: Option<prost_types::Timestamp>) -> i64 {
    ts.map_or(0, |t| {
        t.seconds.saturating_mul(1000) + i64::from(t.nanos) / 1_000_000
    })
}

impl Worker {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        outbound: Arc<Outbound>,
        policy: OriginPolicy,
        allow_http: bool,
    ) -> Self {
        Self {
            db,
            outbox,
            outbound,
            policy,
            allow_http,
            recorded_success: Mutex::new(HashMap::new()),
        }
    }

    /// One delivery from the work queue. It is acknowledged once the job is done, waiting in
    /// the log, or dead; only a database failure leaves it to the bus to deliver again.
    pub async fn intake(&self, delivery: Delivery) {
        let payload = delivery.payload.clone();
        let job = match FederationJob::decode(payload.as_ref()) {
            Ok(job) if !job.id.is_empty() => job,
            _ => {
                tracing::error!(subject = %delivery.subject, "malformed federation job dropped");
                let _ = delivery.term().await;
                return;
            }
        };
        let settled = match log::state(&self.db, &job.id).await {
            Ok(Some(_)) => Ok(Settled::Duplicate),
            Ok(None) => self.handle(&job, &payload, 0).await,
            Err(err) => Err(err),
        };
        let outcome = match settled {
            Ok(settled) => {
                tracing::debug!(job_id = %job.id, ?settled, "federation job settled");
                delivery.ack().await
            }
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "federation job not recorded; the bus will redeliver");
                delivery.nak(Duration::from_secs(5)).await
            }
        };
        if let Err(err) = outcome {
            tracing::warn!(job_id = %job.id, error = %err, "could not settle a federation job");
        }
    }

    /// A job from the log whose retry is due (its lease is ours).
    pub async fn retry(&self, row: JobRow) {
        let Ok(job) = FederationJob::decode(row.payload.as_slice()) else {
            tracing::error!(job_id = %row.id, "malformed job in the log");
            return;
        };
        if let Err(err) = self.handle(&job, &row.payload, row.attempts).await {
            // The lease runs out and another pass takes it again.
            tracing::warn!(job_id = %row.id, error = %err, "federation retry failed");
        }
    }

    async fn handle(
        &self,
        job: &FederationJob,
        payload: &[u8],
        attempts: i32,
    ) -> Result<Settled, DbErr> {
        let now = now_millis();
        let record = JobRecord {
            id: &job.id,
            kind: jobs::kind_name(job.kind.as_ref()),
            destination: &job.destination,
            payload,
            attempts,
            expires_at: millis(job.expires_at),
        };
        let destination = match Origin::parse(&job.destination, self.allow_http) {
            Ok(origin) => origin,
            Err(err) => {
                return self
                    .bury(&record, &format!("invalid destination: {err}"))
                    .await;
            }
        };
        if !self.policy.permits(&destination) {
            return self
                .bury(&record, "destination denied by the federation policy")
                .await;
        }
        if !self.allow_http && is_internal_address(&destination) {
            return self
                .bury(&record, "destination is an internal network address")
                .await;
        }
        if record.expires_at <= now {
            return self
                .bury(&record, "expired before it could be delivered")
                .await;
        }
        let probe = match destinations::gate(&self.db, &job.destination, now).await? {
            Gate::Go { probe } => probe,
            Gate::Wait(until) => {
                let until = destinations::jitter(until - now).max(0) + now;
                log::park(&self.db, &record, until, "destination in backoff", now).await?;
                return Ok(Settled::Waiting);
            }
        };
        let outcome = calls::run(&self.outbound, &destination, job, self.allow_http).await;
        let now = now_millis();
        match outcome {
            Ok(effects) => {
                self.complete(&record, effects, now).await?;
                self.answered(&job.destination, probe, now).await?;
                Ok(Settled::Done)
            }
            Err(Failure::Transient(error)) => {
                tracing::info!(job_id = %job.id, destination = %job.destination, %error, "federation call failed; will retry");
                let next =
                    destinations::failed(&self.db, &job.destination, &error, probe, now).await?;
                let record = JobRecord {
                    attempts: attempts + 1,
                    ..record
                };
                if next >= record.expires_at {
                    let reason = format!(
                        "expired after {} attempts; last error: {error}",
                        record.attempts
                    );
                    return self.bury(&record, &reason).await;
                }
                log::park(&self.db, &record, next, &error, now).await?;
                Ok(Settled::Waiting)
            }
            Err(Failure::Local(error)) => {
                tracing::warn!(job_id = %job.id, %error, "cannot sign federation call; will retry");
                log::park(&self.db, &record, now + LOCAL_RETRY_MS, &error, now).await?;
                Ok(Settled::Waiting)
            }
            Err(Failure::Permanent(error)) => {
                self.answered(&job.destination, probe, now).await?;
                let record = JobRecord {
                    attempts: attempts + 1,
                    ..record
                };
                self.bury(&record, &error).await
            }
        }
    }

    /// Records the job as done and its effects, in one transaction.
    async fn complete(
        &self,
        record: &JobRecord<'_>,
        effects: Effects,
        now: i64,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        log::finish(&txn, record, now).await?;
        for result in &effects.results {
            self.outbox
                .enqueue(
                    &txn,
                    OutboxEvent::new(calls::result_subject(result), result),
                )
                .await?;
        }
        for job in &effects.jobs {
            self.outbox.enqueue(&txn, jobs::job_event(job)).await?;
        }
        txn.commit().await?;
        if !effects.results.is_empty() || !effects.jobs.is_empty() {
            self.outbox.wake();
        }
        Ok(())
    }

    /// The destination answered: clear its backoff, and if it was unhealthy, make its waiting
    /// jobs due now.
    async fn answered(&self, origin: &str, probe: bool, now: i64) -> Result<(), DbErr> {
        if !probe {
            let mut recorded = self
                .recorded_success
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if recorded
                .get(origin)
                .is_some_and(|at| at.elapsed() < SUCCESS_RECORD_INTERVAL)
            {
                return Ok(());
            }
            recorded.insert(origin.to_owned(), Instant::now());
        }
        if destinations::succeeded(&self.db, origin, now).await? {
            let woken = log::wake_destination(&self.db, origin, now).await?;
            tracing::info!(%origin, woken, "destination answers again");
        }
        Ok(())
    }

    async fn bury(&self, record: &JobRecord<'_>, error: &str) -> Result<Settled, DbErr> {
        tracing::warn!(job_id = %record.id, kind = record.kind, destination = %record.destination, %error, "federation job dead-lettered");
        let now = now_millis();
        let txn = self.db.begin().await?;
        dead_letters::insert(
            &txn,
            record.id,
            record.destination,
            record.payload,
            record.attempts,
            error,
            now,
        )
        .await?;
        log::mark_dead(&txn, record, error, now).await?;
        txn.commit().await?;
        Ok(Settled::Dead)
    }

    /// Puts a dead letter's job back in the log with a fresh TTL.
    pub async fn requeue(&self, dead_letter_id: &str) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        let Some(row) = dead_letters::take(&txn, dead_letter_id).await? else {
            return Ok(false);
        };
        let Ok(mut job) = FederationJob::decode(row.payload.as_slice()) else {
            txn.commit().await?;
            return Ok(true);
        };
        let now = now_millis();
        let ttl = job.kind.as_ref().map_or(0, jobs::ttl_secs) * 1000;
        let expires_at = now + ttl;
        job.expires_at = Some(prost_types::Timestamp {
            seconds: expires_at / 1000,
            nanos: 0,
        });
        let payload = job.encode_to_vec();
        let record = JobRecord {
            id: &job.id,
            kind: jobs::kind_name(job.kind.as_ref()),
            destination: &job.destination,
            payload: &payload,
            attempts: 0,
            expires_at,
        };
        log::park(&txn, &record, now, "retried by an operator", now).await?;
        txn.commit().await?;
        Ok(true)
    }
}
