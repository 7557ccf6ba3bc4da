//! A PodDisruptionBudget per service that runs more than one pod, so node drains take them
//! down one at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::service::Service;
use crate::validate::ValidSpec;

use super::meta::{object_meta, selector, selector_labels, service_object_name};

/// None for a service with a single pod: a budget there would block drains or protect nothing.
pub fn pdb(spec: &ValidSpec, service: Service) -> Option<PodDisruptionBudget> {
    if spec.scaling(service).min_replicas() <= 1 {
        return None;
    }
    let component = Some(service.name());
    Some(PodDisruptionBudget {
        metadata: object_meta(spec, service_object_name(spec, service), component),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(selector_labels(spec, component))),
            // a crash-looping pod must not block node drains
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
            min_available: None,
        }),
        status: None,
    })
}
