//! The next status of a Homeserver, computed purely from the previous one and what this
//! reconcile did. A condition's lastTransitionTime moves only when its status flips, so
//! `kubectl get` shows how long a state has lasted, not when the operator last looked.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{ConditionType, HomeserverStatus, ServiceStatus, ServicesStatus};
use crate::service::Service;

/// What one reconcile found and did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// spec.paused: nothing was applied.
    Paused,
    /// The spec failed validation (the messages, for the admin); nothing was applied.
    InvalidSpec(Vec<String>),
    /// The objects were applied.
    Reconciled(Box<Progress>),
}

/// Where the version rollout stands after a reconcile that applied objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// spec.version.
    pub target_version: String,
    /// The version every service runs after this reconcile.
    pub current_version: Option<String>,
    pub rollout: Rollout,
    /// Pods of each service, from the Deployments as applied.
    pub services: ServicesStatus,
    /// Something an admin must fix that did not stop the rest (reason, message).
    pub degraded: Option<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// The migration Job (named) has not finished.
    MigrationRunning(String),
    /// The migration Job (named) failed; the Deployments stay on the current version.
    MigrationFailed(String),
    /// This service is moving to the target version; those after it wait.
    RollingOut(Service),
    /// Every service runs the target version.
    Complete,
}

pub const PAUSED: &str = "Paused";
pub const INVALID_SPEC: &str = "InvalidSpec";
pub const MIGRATION_RUNNING: &str = "MigrationRunning";
pub const MIGRATION_FAILED: &str = "MigrationFailed";

/// The status to write after a reconcile with `outcome` of the object at `generation`.
pub fn next_status(
    previous: Option<&HomeserverStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: &Time,
) -> HomeserverStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let mut set = |kind: ConditionType, value: bool, reason: &str, message: String| {
        set_condition(
            &mut status.conditions,
            kind,
            value,
            reason,
            message,
            generation,
            now,
        );
    };
    match outcome {
        Outcome::Paused => set(
            ConditionType::ReconciliationPaused,
            true,
            PAUSED,
            "spec.paused is true: the operator changes nothing".to_owned(),
        ),
        Outcome::InvalidSpec(messages) => {
            set(
                ConditionType::ReconciliationPaused,
                false,
                "Reconciling",
                String::new(),
            );
            set(
                ConditionType::Degraded,
                true,
                INVALID_SPEC,
                messages.join("; "),
            );
            set(
                ConditionType::Progressing,
                false,
                INVALID_SPEC,
                "the spec must be fixed before anything changes".to_owned(),
            );
        }
        Outcome::Reconciled(progress) => {
            set(
                ConditionType::ReconciliationPaused,
                false,
                "Reconciling",
                String::new(),
            );
            let (progressing, reason, message) = match &progress.rollout {
                Rollout::MigrationRunning(job) => (
                    true,
                    MIGRATION_RUNNING,
                    format!("waiting for the migration Job {job}"),
                ),
                Rollout::MigrationFailed(job) => (
                    false,
                    MIGRATION_FAILED,
                    format!("the migration Job {job} failed"),
                ),
                Rollout::RollingOut(service) => (
                    true,
                    "RollingOut",
                    format!(
                        "{} is moving to {}",
                        service.name(),
                        progress.target_version
                    ),
                ),
                Rollout::Complete => (
                    false,
                    "RolloutComplete",
                    format!("every service runs {}", progress.target_version),
                ),
            };
            set(ConditionType::Progressing, progressing, reason, message);
            let degraded = match &progress.rollout {
                Rollout::MigrationFailed(job) => Some((
                    MIGRATION_FAILED.to_owned(),
                    format!(
                        "the migration Job {job} failed: see its logs; services keep the current version"
                    ),
                )),
                _ => progress.degraded.clone(),
            };
            match degraded {
                Some((reason, message)) => set(ConditionType::Degraded, true, &reason, message),
                None => set(ConditionType::Degraded, false, "AsExpected", String::new()),
            }
            let (available, reason) = if all_ready(&progress.services) {
                (true, "AllServicesReady")
            } else {
                (false, "ServicesNotReady")
            };
            set(ConditionType::Available, available, reason, String::new());
            status.services = Some(progress.services.clone());
            status.current_version = progress.current_version.clone();
            status.target_version = Some(progress.target_version.clone());
        }
    }
    status
}

/// Sets one condition; its lastTransitionTime changes only when its status does.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: ConditionType,
    value: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if value { "True" } else { "False" }.to_owned();
    let existing = conditions.iter().position(|c| c.type_ == kind.as_str());
    let last_transition_time = match existing.map(|i| &conditions[i]) {
        Some(previous) if previous.status == status => previous.last_transition_time.clone(),
        _ => now.clone(),
    };
    let condition = Condition {
        type_: kind.as_str().to_owned(),
        status,
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    };
    match existing {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
    // a stable order keeps status patches (and diffs of them) quiet
    conditions.sort_by_key(|c| {
        ConditionType::ALL
            .iter()
            .position(|k| k.as_str() == c.type_)
    });
}

/// Pods of one service as its Deployment reports them.
pub fn service_status(deployment: &Deployment) -> ServiceStatus {
    let status = deployment.status.clone().unwrap_or_default();
    ServiceStatus {
        replicas: deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .or(status.replicas),
        ready_replicas: Some(status.ready_replicas.unwrap_or(0)),
        updated_replicas: Some(status.updated_replicas.unwrap_or(0)),
    }
}

pub fn service_slot(services: &mut ServicesStatus, service: Service) -> &mut Option<ServiceStatus> {
    match service {
        Service::Identity => &mut services.identity,
        Service::Guild => &mut services.guild,
        Service::FederationSync => &mut services.federation_sync,
        Service::PushRelay => &mut services.push_relay,
        Service::Media => &mut services.media,
    }
}

/// Every service has all its pods (at least one) ready.
fn all_ready(services: &ServicesStatus) -> bool {
    let mut services = services.clone();
    Service::ALL.iter().all(|&s| {
        service_slot(&mut services, s).as_ref().is_some_and(|st| {
            let ready = st.ready_replicas.unwrap_or(0);
            ready >= 1 && ready >= st.replicas.unwrap_or(1)
        })
    })
}

#[cfg(test)]
#[path = "status/tests.rs"]
mod tests;
