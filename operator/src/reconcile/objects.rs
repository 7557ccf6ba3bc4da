//! The apply stage: every built object in a fixed order, then the version rollout (migration
//! Job first, then one Deployment at a time).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::{Api, Client, ResourceExt};

use crate::apply::{apply, apply_dynamic, crd_exists, ensure_keys_secret};
use crate::build::{self, Desired, Observed};
use crate::crd::{Homeserver, ServicesStatus};
use crate::rollout::{JobState, job_state, rolled_out};
use crate::service::Service;
use crate::status::{Progress, Rollout, service_slot, service_status};
use crate::validate::{ValidSpec, validate};

pub const SERVICE_MONITOR_CRD: &str = "servicemonitors.monitoring.coreos.com";
pub const GATEWAY_CRDS: [&str; 2] = [
    "grpcroutes.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
];
pub const GATEWAY_API_MISSING: &str = "GatewayApiMissing";

pub async fn apply_all(
    client: &Client,
    hs: &Homeserver,
    spec: &ValidSpec,
) -> Result<Progress, kube::Error> {
    let ns = spec.namespace.as_str();
    ensure_keys_secret(client, spec).await?;
    let mut observed = Observed {
        federation_backlog: crate::backlog::federation_backlog(client, spec).await,
        federation_sync_replicas: hs
            .status
            .as_ref()
            .and_then(|s| s.services.as_ref())
            .and_then(|s| s.federation_sync.as_ref())
            .and_then(|s| s.replicas),
        ..Observed::default()
    };
    // Built once to learn which Secrets the pods read, then with their versions.
    let secrets = build::secrets_used(&build::desired(spec, &observed));
    observed.secret_versions = secret_versions(client, ns, secrets).await?;
    let desired = build::desired(spec, &observed);
    for object in &desired.services {
        apply(client, ns, object).await?;
    }
    for object in &desired.network_policies {
        apply(client, ns, object).await?;
    }
    for object in &desired.disruption_budgets {
        apply(client, ns, object).await?;
    }
    for object in &desired.autoscalers {
        apply(client, ns, object).await?;
    }
    let (rollout, current_version, services) =
        roll_out(client, hs, spec, &desired, &observed).await?;
    for object in &desired.ingresses {
        apply(client, ns, object).await?;
    }
    let mut degraded = None;
    if !desired.gateway_routes.is_empty() {
        if crd_exists(client, GATEWAY_CRDS[0]).await? && crd_exists(client, GATEWAY_CRDS[1]).await?
        {
            for object in &desired.gateway_routes {
                apply_dynamic(client, ns, object).await?;
            }
        } else {
            degraded = Some((
                GATEWAY_API_MISSING.to_owned(),
                "spec.route.gateway needs the Gateway API CRDs (GRPCRoute, HTTPRoute), which this cluster lacks".to_owned(),
            ));
        }
    }
    if crd_exists(client, SERVICE_MONITOR_CRD).await? {
        apply_dynamic(client, ns, &desired.service_monitor).await?;
    }
    Ok(Progress {
        target_version: spec.spec.version.clone(),
        current_version,
        rollout,
        services,
        degraded,
    })
}

/// The migration Job and the Deployments. While spec.version differs from status.currentVersion
/// the Job of spec.version runs first and the Deployments stay on the current version (on a
/// first install they do not exist yet); then they move one at a time in `Service::ALL` order.
async fn roll_out(
    client: &Client,
    hs: &Homeserver,
    spec: &ValidSpec,
    desired: &Desired,
    observed: &Observed,
) -> Result<(Rollout, Option<String>, ServicesStatus), kube::Error> {
    let ns = spec.namespace.as_str();
    let target = spec.spec.version.as_str();
    let current = hs.status.as_ref().and_then(|s| s.current_version.clone());
    let mut services = ServicesStatus::default();
    if current.as_deref() == Some(target) {
        for (&service, object) in Service::ALL.iter().zip(&desired.deployments) {
            let applied = apply(client, ns, object).await?;
            *service_slot(&mut services, service) = Some(service_status(&applied));
        }
        return Ok((Rollout::Complete, current, services));
    }
    let previous = current
        .as_deref()
        .and_then(|version| deployments_at(hs, version, observed));
    // a Job's pod template is immutable: apply it once, then only read it (a spec edit during
    // the migration would otherwise make every apply fail)
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let job = match jobs.get_opt(&desired.migration.name_any()).await? {
        Some(job) => job,
        None => apply(client, ns, &desired.migration).await?,
    };
    let waiting = match job_state(&job) {
        JobState::Running => Some(Rollout::MigrationRunning(job.name_any())),
        JobState::Failed => Some(Rollout::MigrationFailed(job.name_any())),
        JobState::Succeeded => None,
    };
    if let Some(rollout) = waiting {
        for (&service, object) in Service::ALL.iter().zip(previous.iter().flatten()) {
            let applied = apply(client, ns, object).await?;
            *service_slot(&mut services, service) = Some(service_status(&applied));
        }
        return Ok((rollout, current, services));
    }
    let mut moving = None;
    for (i, (&service, new)) in Service::ALL.iter().zip(&desired.deployments).enumerate() {
        let object = match (moving, &previous) {
            (None, _) => new,
            (Some(_), Some(old)) => &old[i],
            // first install: each service is created when the one before it is ready
            (Some(_), None) => continue,
        };
        let applied = apply(client, ns, object).await?;
        *service_slot(&mut services, service) = Some(service_status(&applied));
        if moving.is_none() && !rolled_out(&applied) {
            moving = Some(service);
        }
    }
    Ok(match moving {
        Some(service) => (Rollout::RollingOut(service), current, services),
        None => (Rollout::Complete, Some(target.to_owned()), services),
    })
}

/// The Deployments as they were built for `version` (the same spec otherwise).
fn deployments_at(hs: &Homeserver, version: &str, observed: &Observed) -> Option<Vec<Deployment>> {
    let mut old = hs.clone();
    old.spec.version = version.to_owned();
    let spec = validate(&old).ok()?;
    Some(build::desired(&spec, observed).deployments)
}

/// The resourceVersion of each Secret that exists (a missing one shows in the pods' events).
async fn secret_versions(
    client: &Client,
    ns: &str,
    names: std::collections::BTreeSet<String>,
) -> Result<std::collections::BTreeMap<String, String>, kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), ns);
    let mut versions = std::collections::BTreeMap::new();
    for name in names {
        if let Some(meta) = api.get_metadata_opt(&name).await? {
            versions.insert(name, meta.metadata.resource_version.unwrap_or_default());
        }
    }
    Ok(versions)
}
