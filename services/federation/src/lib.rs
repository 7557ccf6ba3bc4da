//! The federation-sync service: every outbound server-to-server call of a homeserver leaves
//! through here (PROTOCOL.md section 7). Jobs come from the `federation-jobs` work queue, shared
//! by every replica through one durable consumer; each call is signed with the server key (held
//! by identity), failures back off per destination, and jobs that outlive their TTL become dead
//! letters an operator can list and retry. It also serves other servers' keys to the services
//! of this homeserver that verify inbound calls.

mod calls;
mod grpc;
mod keys;
mod metrics;
mod outbound;
mod store;
mod worker;

use std::{sync::Arc, time::Duration};

use mzchat_federation_migration::Migrator;
use mzchat_platform::{
    ServerConfig,
    bus::{Bus, ConsumerSpec, streams},
    db::{self, DatabaseTarget, DbSetupError},
    grpc::{GrpcServer, InternalAuth},
    outbox::{Outbox, OutboxRelay},
};
use mzchat_proto::federation::{
    federation_admin_service_server::FederationAdminServiceServer,
    federation_internal_service_server::FederationInternalServiceServer,
};
use sea_orm::DatabaseConnection;
use tokio::{sync::Semaphore, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{keys::KeyCache, outbound::Outbound, worker::Worker};

pub const SERVICE: &str = "federation";
/// The one durable consumer every replica shares.
pub const DURABLE: &str = "federation-sync";
const RETRY_POLL: Duration = Duration::from_millis(500);
/// Jobs a replica holds per call slot (queued for a slot, or in a call).
const JOBS_IN_HAND_PER_CALL: u32 = 4;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const KEEP_FINISHED_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Clone)]
pub struct FederationConfig {
    pub server: ServerConfig,
    /// Where identity's internal API answers (it signs every outbound call).
    pub identity_internal_url: String,
    /// Calls in flight per replica.
    pub concurrency: usize,
    /// Deadline of one call to another server.
    pub call_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Database(#[from] DbSetupError),
    #[error("{0}")]
    Config(String),
}

pub struct Deps {
    pub bus: Arc<dyn Bus>,
    pub internal: InternalAuth,
}

pub struct Federation {
    db: DatabaseConnection,
    outbox: Outbox,
    bus: Arc<dyn Bus>,
    internal: InternalAuth,
    worker: Arc<Worker>,
    outbound: Arc<Outbound>,
    keys: Arc<KeyCache>,
    config: FederationConfig,
}

pub async fn migrate(config: &ServerConfig) -> Result<(), DbSetupError> {
    let db = db::connect(&DatabaseTarget::for_service(config, SERVICE), 1).await?;
    db::migrate::<Migrator>(&db).await
}

pub async fn build(config: FederationConfig, deps: Deps) -> Result<Federation, SetupError> {
    let target = DatabaseTarget::for_service(&config.server, SERVICE);
    let db = db::connect(&target, config.server.database_max_connections).await?;
    if config.server.migrate {
        db::migrate::<Migrator>(&db).await?;
    }
    let outbound = Arc::new(
        Outbound::new(
            &config.identity_internal_url,
            deps.internal.clone(),
            config.call_timeout,
        )
        .map_err(SetupError::Config)?,
    );
    let outbox = Outbox::new();
    let worker = Arc::new(Worker::new(
        db.clone(),
        outbox.clone(),
        outbound.clone(),
        config.server.federation.clone(),
        config.server.insecure_dev,
        config.concurrency,
    ));
    Ok(Federation {
        db,
        outbox,
        bus: deps.bus,
        internal: deps.internal,
        worker,
        outbound,
        keys: Arc::new(KeyCache::default()),
        config,
    })
}

impl Federation {
    pub fn database(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Adds job and destination metrics to the process's registry.
    pub fn register_metrics(&self, metrics: &mzchat_platform::metrics::Metrics) {
        self.worker.metrics.register(metrics);
    }

    pub fn mount(&self, server: &mut GrpcServer) {
        server
            .add_service(FederationAdminServiceServer::with_interceptor(
                grpc::AdminGrpc::new(self.db.clone(), self.worker.clone()),
                self.internal.clone(),
            ))
            .add_service(FederationInternalServiceServer::with_interceptor(
                grpc::InternalGrpc::new(
                    self.keys.clone(),
                    self.outbound.clone(),
                    self.config.server.federation.clone(),
                    self.config.server.insecure_dev,
                ),
                self.internal.clone(),
            ));
    }

    /// Starts the intake from the work queue, the retry scheduler, the outbox relay of results,
    /// and pruning; they stop at `shutdown`, finishing calls in flight.
    pub fn spawn(&self, shutdown: CancellationToken) -> Vec<JoinHandle<()>> {
        // Jobs being worked on (queued for a call slot or in a call): bounded, so a flood of jobs
        // waits in the bus rather than in memory.
        let concurrency = self.config.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency * JOBS_IN_HAND_PER_CALL as usize));
        let relay = OutboxRelay::new(self.db.clone(), self.bus.clone(), &self.outbox, SERVICE);
        vec![
            tokio::spawn(relay.run(shutdown.clone())),
            tokio::spawn(intake(
                self.bus.clone(),
                self.worker.clone(),
                permits.clone(),
                concurrency,
                shutdown.clone(),
            )),
            tokio::spawn(retries(
                self.db.clone(),
                self.worker.clone(),
                permits,
                shutdown.clone(),
            )),
            tokio::spawn(
                self.worker
                    .metrics
                    .clone()
                    .count_destinations(self.db.clone(), shutdown.clone()),
            ),
            tokio::spawn(mzchat_platform::bus::sample_lag(
                self.bus.clone(),
                consumer_spec(),
                shutdown.clone(),
            )),
            tokio::spawn(prune(self.db.clone(), shutdown)),
        ]
    }
}

fn consumer_spec() -> ConsumerSpec {
    ConsumerSpec {
        stream: streams::FEDERATION_JOBS,
        durable: DURABLE.into(),
        filter: "federation.v1.job.>".into(),
        // Delivery problems are handled here (the job log), not by the bus giving up.
        max_deliver: u64::from(u32::MAX),
        // Deliveries are acknowledged once recorded in the job log, before any call.
        ack_wait: Duration::from_secs(30),
        ordered: false,
    }
}

async fn intake(
    bus: Arc<dyn Bus>,
    worker: Arc<Worker>,
    permits: Arc<Semaphore>,
    concurrency: usize,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    let mut deliveries = loop {
        match bus.consume(consumer_spec()).await {
            Ok(deliveries) => break deliveries,
            Err(err) => {
                tracing::warn!(error = %err, "cannot consume federation jobs yet; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = deliveries.recv() => match next {
                Some(delivery) => delivery,
                None => break,
            },
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let worker = worker.clone();
        tokio::spawn(async move {
            worker.intake(delivery).await;
            drop(permit);
        });
    }
    // Jobs in hand finish before the process stops (each is leased in the log if it cannot).
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        permits.acquire_many(JOBS_IN_HAND_PER_CALL * concurrency as u32),
    )
    .await;
}

/// Runs waiting jobs from the log as they fall due; replicas take disjoint batches, and take
/// no more than they have room for.
async fn retries(
    db: DatabaseConnection,
    worker: Arc<Worker>,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    const BATCH: usize = 64;
    loop {
        let room = permits.available_permits().min(BATCH);
        let claimed = if room == 0 {
            Vec::new()
        } else {
            let token = store::jobs::lease_token();
            match store::jobs::claim_due(&db, db::now_millis(), room as u64, &token).await {
                Ok(rows) => rows.into_iter().map(|row| (row, token.clone())).collect(),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read due federation jobs");
                    Vec::new()
                }
            }
        };
        let full = room > 0 && claimed.len() == room;
        for (row, token) in claimed {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let worker = worker.clone();
            tokio::spawn(async move {
                worker.retry(row, &token).await;
                drop(permit);
            });
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY_POLL) => {}
        }
    }
}

async fn prune(db: DatabaseConnection, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store::jobs::prune(&db, db::now_millis() - KEEP_FINISHED_MS).await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "federation job log pruned"),
            Err(err) => tracing::warn!(error = %err, "federation job log pruning failed"),
        }
    }
}
