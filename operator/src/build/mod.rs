//! The pipeline's pure build stage: from a validated Homeserver (and what was observed), every
//! object the operator applies, each owned by the Homeserver. One module per kind of object.

pub mod deployment;
pub mod env;
pub mod job;
pub mod keys;
pub mod meta;
pub mod monitoring;
pub mod network_policy;
pub mod pdb;
pub mod pod;
pub mod route;
pub mod scale;
pub mod service;
#[cfg(test)]
mod tests;
pub mod volumes;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service as KubeService;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;

use crate::service::Service;
use crate::validate::ValidSpec;

pub use scale::Observed;

/// Everything a Homeserver should have, besides the generated keys Secret (`keys`).
#[derive(Clone, Debug)]
pub struct Desired {
    pub deployments: Vec<Deployment>,
    pub services: Vec<KubeService>,
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    pub disruption_budgets: Vec<PodDisruptionBudget>,
    pub network_policies: Vec<NetworkPolicy>,
    /// Runs before the Deployments move to spec.version.
    pub migration: Job,
    pub ingresses: Vec<Ingress>,
    /// GRPCRoute and HTTPRoute, with spec.route.gateway.
    pub gateway_routes: Vec<DynamicObject>,
    /// Applied only where the prometheus-operator CRDs exist.
    pub service_monitor: DynamicObject,
}

/// The Secrets the services' pods read (whose versions `Observed` carries).
pub fn secrets_used(desired: &Desired) -> std::collections::BTreeSet<String> {
    desired
        .deployments
        .iter()
        .filter_map(|d| d.spec.as_ref()?.template.spec.as_ref())
        .flat_map(|pod| {
            let containers: Vec<_> = pod.containers.iter().collect();
            pod::secrets_of(&containers, pod.volumes.as_deref().unwrap_or_default())
        })
        .collect()
}

pub fn desired(spec: &ValidSpec, observed: &Observed) -> Desired {
    let route = spec.spec.route.as_ref();
    Desired {
        deployments: Service::ALL
            .iter()
            .map(|&s| {
                let replicas = scale::replicas(spec.scaling(s), observed);
                deployment::deployment(spec, s, replicas, &observed.secret_versions)
            })
            .collect(),
        services: Service::ALL
            .iter()
            .map(|&s| service::service(spec, s))
            .collect(),
        autoscalers: Service::ALL
            .iter()
            .filter_map(|&s| scale::hpa(spec, s))
            .collect(),
        disruption_budgets: Service::ALL
            .iter()
            .filter_map(|&s| pdb::pdb(spec, s))
            .collect(),
        network_policies: network_policy::network_policies(spec),
        migration: job::migration_job(spec),
        ingresses: route
            .and_then(|r| r.ingress.as_ref())
            .map(|ingress| route::ingresses(spec, ingress))
            .unwrap_or_default(),
        gateway_routes: route
            .and_then(|r| r.gateway.as_ref())
            .map(|gateway| route::gateway_routes(spec, gateway))
            .unwrap_or_default(),
        service_monitor: monitoring::service_monitor(spec),
    }
}
