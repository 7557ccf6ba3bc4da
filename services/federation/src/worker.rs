//! The job runner. A job from the work queue (any replica takes any job) is first recorded in
//! the job log under this replica's lease and only then acknowledged, so the bus never waits on
//! a remote server and nothing is lost if this replica dies mid-call (the lease runs out and
//! another replica takes the job from the log). Jobs also come from the log when a retry falls
//! due. A destination in backoff is not called, and no destination gets more than half of a
//! replica's call slots; jobs queue for their destination's share without holding a slot, so
//! one slow or down server never holds up the others.

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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::{
    calls::{self, Effects, Failure},
    outbound::Outbound,
    store::{
        JobRow, dead_letters,
        destinations::{self, Gate},
        jobs::{self as log, JobRecord, Outcome},
    },
};

/// A retry after our own signer failed.
const LOCAL_RETRY_MS: i64 = 5_000;
/// A retry after the destination rate-limited the call.
const THROTTLED_RETRY_MS: i64 = 2_000;
/// How long a job queues for a call slot before it goes back to the log for a while.
const MAX_QUEUE_WAIT: Duration = Duration::from_secs(10);
const BUSY_RETRY_MS: i64 = 1_000;
/// How often a healthy destination's last success is written down (not on every call).
const SUCCESS_RECORD_INTERVAL: Duration = Duration::from_secs(30);
const MAX_TRACKED_DESTINATIONS: usize = 10_000;

pub struct Worker {
    db: DatabaseConnection,
    outbox: Outbox,
    outbound: Arc<Outbound>,
    policy: OriginPolicy,
    allow_http: bool,
    recorded_success: Mutex<HashMap<String, Instant>>,
    /// Calls in flight from this replica.
    calls: Arc<Semaphore>,
    /// Each destination's share of `calls`.
    per_destination: Mutex<HashMap<String, Arc<Semaphore>>>,
    destination_share: usize,
    pub metrics: crate::metrics::FederationMetrics,
}

/// How a run of a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Done,
    Waiting,
    Dead,
    /// The lease ran out before the outcome was written; another replica has the job.
    Lost,
}

fn millis(ts: Option<prost_types::Timestamp>) -> i64 {
    ts.map_or(0, |t| {
        t.seconds.saturating_mul(1000) + i64::from(t.nanos) / 1_000_000
    })
}

fn record<'a>(job: &'a FederationJob, payload: &'a [u8], attempts: i32) -> JobRecord<'a> {
    JobRecord {
        id: &job.id,
        kind: jobs::kind_name(job.kind.as_ref()),
        destination: &job.destination,
        payload,
        attempts,
        expires_at: millis(job.expires_at),
    }
}

impl Worker {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        outbound: Arc<Outbound>,
        policy: OriginPolicy,
        allow_http: bool,
        concurrency: usize,
    ) -> Self {
        Self {
            db,
            outbox,
            outbound,
            policy,
            allow_http,
            recorded_success: Mutex::new(HashMap::new()),
            calls: Arc::new(Semaphore::new(concurrency.max(1))),
            per_destination: Mutex::new(HashMap::new()),
            destination_share: (concurrency / 2).max(1),
            metrics: Default::default(),
        }
    }

    /// One delivery from the work queue: recorded under a lease, acknowledged, then run. Only a
    /// database failure leaves it to the bus to deliver again.
    pub async fn intake(&self, delivery: Delivery) {
        // The job's first run continues the trace of the change that queued it.
        let span = tracing::info_span!("federation.job", subject = %delivery.subject);
        mzchat_platform::telemetry::follow_trace(&span, &delivery.headers);
        self.take(delivery).instrument(span).await
    }

    async fn take(&self, delivery: Delivery) {
        let payload = delivery.payload.clone();
        let job = match FederationJob::decode(payload.as_ref()) {
            Ok(job) if !job.id.is_empty() => job,
            _ => {
                tracing::error!(subject = %delivery.subject, "malformed federation job dropped");
                let _ = delivery.term().await;
                return;
            }
        };
        let record = record(&job, &payload, 0);
        let token = log::lease_token();
        let fresh = match log::begin(&self.db, &record, &token, now_millis()).await {
            Ok(fresh) => fresh,
            Err(err) => {
                tracing::warn!(job_id = %job.id, error = %err, "federation job not recorded; the bus will redeliver");
                if let Err(err) = delivery.nak(Duration::from_secs(5)).await {
                    tracing::warn!(job_id = %job.id, error = %err, "could not settle a federation job");
                }
                return;
            }
        };
        if let Err(err) = delivery.ack().await {
            // Recorded already: a redelivery is recognised as a duplicate.
            tracing::warn!(job_id = %job.id, error = %err, "could not acknowledge a federation job");
        }
        if fresh {
            self.run(&job, &record, &token).await;
        } else {
            tracing::debug!(job_id = %job.id, "duplicate federation job dropped");
        }
    }

    /// A job from the log whose retry is due, leased under `token`.
    pub async fn retry(&self, row: JobRow, token: &str) {
        let Ok(job) = FederationJob::decode(row.payload.as_slice()) else {
            tracing::error!(job_id = %row.id, "malformed job in the log");
            return;
        };
        self.run(&job, &record(&job, &row.payload, row.attempts), token)
            .await;
    }

    async fn run(&self, job: &FederationJob, record: &JobRecord<'_>, token: &str) {
        match self.attempt(job, record, token).await {
            Ok(Settled::Lost) => {
                tracing::warn!(job_id = %job.id, "federation job's lease ran out; another replica has it");
            }
            Ok(settled) => tracing::debug!(job_id = %job.id, ?settled, "federation job settled"),
            Err(err) => {
                // The lease runs out and the job is taken again from the log.
                tracing::warn!(job_id = %job.id, error = %err, "federation job outcome not recorded");
            }
        }
    }

    /// A call slot, within the destination's share; none if the wait is too long.
    async fn call_slot(
        &self,
        origin: &str,
    ) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let share = {
            let mut shares = self
                .per_destination
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if shares.len() >= MAX_TRACKED_DESTINATIONS {
                shares.retain(|_, share| Arc::strong_count(share) > 1);
            }
            shares
                .entry(origin.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.destination_share)))
                .clone()
        };
        let acquire = async {
            let share = share.acquire_owned().await.ok()?;
            let call = self.calls.clone().acquire_owned().await.ok()?;
            Some((share, call))
        };
        tokio::time::timeout(MAX_QUEUE_WAIT, acquire)
            .await
            .ok()
            .flatten()
    }

    async fn attempt(
        &self,
        job: &FederationJob,
        record: &JobRecord<'_>,
        token: &str,
    ) -> Result<Settled, DbErr> {
        let now = now_millis();
        let destination = match Origin::parse(&job.destination, self.allow_http) {
            Ok(origin) => origin,
            Err(err) => {
                let error = format!("invalid destination: {err}");
                return self.bury(record, token, &error).await;
            }
        };
        if !self.policy.permits(&destination) {
            let error = "destination denied by the federation policy";
            return self.bury(record, token, error).await;
        }
        if !self.allow_http && is_internal_address(&destination) {
            let error = "destination is an internal network address";
            return self.bury(record, token, error).await;
        }
        if record.expires_at <= now {
            let error = "expired before it could be delivered";
            return self.bury(record, token, error).await;
        }
        let probe = match destinations::gate(&self.db, &job.destination, now).await? {
            Gate::Go { probe } => probe,
            Gate::Wait(until) => {
                let until = destinations::jitter(until - now).max(0) + now;
                return self
                    .wait(record, token, until, "destination in backoff")
                    .await;
            }
        };
        let Some(slot) = self.call_slot(&job.destination).await else {
            let next = now_millis() + destinations::jitter(BUSY_RETRY_MS);
            return self.wait(record, token, next, "destination busy").await;
        };
        let outcome = calls::run(&self.outbound, &destination, job, self.allow_http).await;
        drop(slot);
        let now = now_millis();
        let attempts = record.attempts.saturating_add(1);
        let record = JobRecord {
            attempts,
            ..*record
        };
        match outcome {
            Ok(effects) => {
                let settled = self.complete(&record, token, effects, now).await?;
                self.answered(&job.destination, probe, now).await?;
                Ok(settled)
            }
            Err(Failure::Transient(error)) => {
                tracing::info!(job_id = %job.id, destination = %job.destination, %error, "federation call failed; will retry");
                let next =
                    destinations::failed(&self.db, &job.destination, &error, probe, now).await?;
                if next >= record.expires_at {
                    let reason = format!("expired after {attempts} attempts; last error: {error}");
                    return self.bury(&record, token, &reason).await;
                }
                self.wait(&record, token, next, &error).await
            }
            Err(Failure::Throttled(error)) => {
                self.answered(&job.destination, probe, now).await?;
                let next = now + destinations::jitter(THROTTLED_RETRY_MS);
                if next >= record.expires_at {
                    let reason = format!("expired while rate-limited: {error}");
                    return self.bury(&record, token, &reason).await;
                }
                self.wait(&record, token, next, &error).await
            }
            Err(Failure::Local(error)) => {
                tracing::warn!(job_id = %job.id, %error, "cannot sign federation call; will retry");
                self.wait(&record, token, now + LOCAL_RETRY_MS, &error)
                    .await
            }
            Err(Failure::Permanent(error)) => {
                self.answered(&job.destination, probe, now).await?;
                self.bury(&record, token, &error).await
            }
        }
    }

    async fn wait(
        &self,
        record: &JobRecord<'_>,
        token: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<Settled, DbErr> {
        let outcome = Outcome::Waiting {
            next_attempt_at,
            error,
        };
        let kept = log::settle(&self.db, record, token, outcome, now_millis()).await?;
        Ok(if kept {
            self.metrics.job(record.kind, "retry");
            Settled::Waiting
        } else {
            Settled::Lost
        })
    }

    /// Records the job as done and its effects, in one transaction, if the lease is still ours.
    async fn complete(
        &self,
        record: &JobRecord<'_>,
        token: &str,
        effects: Effects,
        now: i64,
    ) -> Result<Settled, DbErr> {
        let txn = self.db.begin().await?;
        if !log::settle(&txn, record, token, Outcome::Done, now).await? {
            return Ok(Settled::Lost);
        }
        for result in &effects.results {
            let event = OutboxEvent::new(calls::result_subject(result), result);
            self.outbox.enqueue(&txn, event).await?;
        }
        for job in &effects.jobs {
            self.outbox.enqueue(&txn, jobs::job_event(job)).await?;
        }
        txn.commit().await?;
        self.metrics.job(record.kind, "done");
        if !effects.results.is_empty() || !effects.jobs.is_empty() {
            self.outbox.wake();
        }
        Ok(Settled::Done)
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
            if recorded.len() >= MAX_TRACKED_DESTINATIONS {
                recorded.clear();
            }
            recorded.insert(origin.to_owned(), Instant::now());
        }
        if destinations::succeeded(&self.db, origin, now).await? {
            let woken = log::wake_destination(&self.db, origin, now).await?;
            tracing::info!(%origin, woken, "destination answers again");
        }
        Ok(())
    }

    async fn bury(
        &self,
        record: &JobRecord<'_>,
        token: &str,
        error: &str,
    ) -> Result<Settled, DbErr> {
        let now = now_millis();
        let txn = self.db.begin().await?;
        if !log::settle(&txn, record, token, Outcome::Dead { error }, now).await? {
            return Ok(Settled::Lost);
        }
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
        txn.commit().await?;
        self.metrics.job(record.kind, "dead");
        tracing::warn!(job_id = %record.id, kind = record.kind, destination = %record.destination, %error, "federation job dead-lettered");
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
        let expires_at = now + job.kind.as_ref().map_or(0, jobs::ttl_secs) * 1000;
        job.expires_at = Some(prost_types::Timestamp {
            seconds: expires_at / 1000,
            nanos: 0,
        });
        let payload = job.encode_to_vec();
        log::requeue(&txn, &record(&job, &payload, 0), now).await?;
        txn.commit().await?;
        Ok(true)
    }
}
