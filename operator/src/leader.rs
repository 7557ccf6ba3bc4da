//! Leader election with a coordination.k8s.io/v1 Lease, so that of several operator replicas
//! one reconciles. A replica takes the Lease when it is absent or expired, renews it while it
//! holds it, and steps down as soon as a renewal fails: two leaders would fight over every
//! object, a short gap without one only delays reconciles.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;

/// The Lease every replica competes for.
pub const LEASE_NAME: &str = "mzchat-operator";

#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    /// This replica (its pod name).
    pub identity: String,
    /// How long a lease lasts without renewal before another replica may take it.
    pub lease_duration: Duration,
    /// Between attempts to acquire or renew; well below `lease_duration`.
    pub retry_period: Duration,
}

impl Config {
    pub fn new(namespace: String, identity: String) -> Self {
        Config {
            namespace,
            identity,
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(5),
        }
    }
}

/// What to do with the Lease as it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Held by this replica: renew it.
    Renew,
    /// Absent holder or expired: take it over.
    TakeOver,
    /// Another replica holds a live lease.
    Wait,
}

/// Pure: whether `identity` may hold `spec` at `now`.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::TakeOver;
    };
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == identity => return Decision::Renew,
        None | Some("") => return Decision::TakeOver,
        Some(_) => {}
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let expired = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .is_none_or(|renewed| renewed.0 + duration < now);
    if expired {
        Decision::TakeOver
    } else {
        Decision::Wait
    }
}

pub struct Elector {
    api: Api<Lease>,
    config: Config,
}

impl Elector {
    pub fn new(client: Client, config: Config) -> Self {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// One round: acquire or renew. Whether this replica holds the Lease afterwards; a write
    /// that loses a race (409 Conflict) means another replica won.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let result = match self.api.get_opt(LEASE_NAME).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(LEASE_NAME.to_owned()),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(None, now)),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => match decide(lease.spec.as_ref(), &self.config.identity, now) {
                Decision::Wait => return Ok(false),
                Decision::Renew => {
                    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                    spec.renew_time = Some(MicroTime(now));
                    spec.lease_duration_seconds = Some(self.duration_seconds());
                    self.replace(&lease).await
                }
                Decision::TakeOver => {
                    lease.spec = Some(self.spec(lease.spec.as_ref(), now));
                    self.replace(&lease).await
                }
            },
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Gives the Lease up (when this replica holds it) so a standby takes over at once instead
    /// of waiting for it to expire; call only once the controller has stopped.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.acquire_time = None;
        spec.renew_time = None;
        match self.replace(&lease).await {
            // someone else wrote it meanwhile: it is not ours to release any more
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Keeps trying to lead, publishing whether this replica leads on `leading`; runs until
    /// every receiver is gone.
    pub async fn run(self: std::sync::Arc<Self>, leading: watch::Sender<bool>) {
        let mut interval = tokio::time::interval(self.config.retry_period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let now_leading = match self.try_acquire_or_renew().await {
                Ok(held) => held,
                Err(error) => {
                    tracing::warn!(error = %error, "cannot renew the leader lease; stepping down");
                    false
                }
            };
            if *leading.borrow() != now_leading {
                tracing::info!(leading = now_leading, identity = %self.config.identity, "leadership changed");
            }
            if leading.send(now_leading).is_err() {
                return;
            }
        }
    }

    /// The Lease's spec with this replica as a new holder (replacing `previous`, if any).
    fn spec(&self, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let transitions = previous.and_then(|s| s.lease_transitions);
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(self.duration_seconds()),
            lease_transitions: Some(transitions.map_or(0, |t| t + 1)),
            ..LeaseSpec::default()
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// A PUT carrying the resourceVersion read: it fails with 409 if anyone wrote in between.
    async fn replace(&self, lease: &Lease) -> Result<Lease, kube::Error> {
        self.api
            .replace(LEASE_NAME, &PostParams::default(), lease)
            .await
    }
}

#[cfg(test)]
#[path = "leader/tests.rs"]
mod tests;
