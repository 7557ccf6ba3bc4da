//! Replicas of each Deployment, and the HorizontalPodAutoscalers for CPU scaling.
//!
//! federation-sync with `targetJobBacklog` is scaled by the operator itself rather than by an
//! HPA on an External metric: an External metric needs a metrics adapter (prometheus-adapter or
//! KEDA) that many clusters lack, while the operator can read the backlog of the job queue
//! directly. So for it the operator writes the Deployment's replicas (within min..=max) and no
//! HPA is made; its targetCPUUtilizationPercentage is then ignored.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use std::collections::BTreeMap;

use crate::service::Service;
use crate::validate::{Scaling, ValidSpec};

use super::meta::{object_meta, service_object_name};

/// What the operator observed that decides replicas (read before building).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Federation jobs waiting in the work queue; None when it could not be read.
    pub federation_backlog: Option<u64>,
    /// federation-sync's Deployment's replicas now; None before it exists.
    pub federation_sync_replicas: Option<i32>,
    /// resourceVersion of each Secret the pods use, by name: a changed Secret changes the
    /// pods' checksum, so they restart with its new content.
    pub secret_versions: BTreeMap<String, String>,
}

/// The Deployment's replicas; None when an HPA owns them.
pub fn replicas(scaling: &Scaling, observed: &Observed) -> Option<i32> {
    match *scaling {
        Scaling::Fixed(replicas) => Some(replicas),
        Scaling::Cpu { .. } => None,
        Scaling::Backlog {
            min,
            max,
            jobs_per_replica,
            initial,
        } => Some(backlog_replicas(
            min,
            max,
            jobs_per_replica,
            observed.federation_sync_replicas.unwrap_or(initial),
            observed.federation_backlog,
        )),
    }
}

/// Enough replicas for `jobs_per_replica` waiting jobs each, within min..=max. Scaling up is
/// immediate; scaling down goes one replica per reconcile, so a backlog that drains in bursts
/// does not make the count flap. Unknown backlog: keep the current count.
pub fn backlog_replicas(
    min: i32,
    max: i32,
    jobs_per_replica: i64,
    current: i32,
    backlog: Option<u64>,
) -> i32 {
    let current = current.clamp(min, max);
    let Some(backlog) = backlog else {
        return current;
    };
    let per = u64::try_from(jobs_per_replica.max(1)).unwrap_or(1);
    let wanted = i32::try_from(backlog.div_ceil(per))
        .unwrap_or(i32::MAX)
        .clamp(min, max);
    if wanted >= current {
        wanted
    } else {
        (current - 1).max(wanted)
    }
}

/// An autoscaling/v2 HPA on CPU, for services scaled that way; None otherwise (including
/// federation-sync on its backlog).
pub fn hpa(spec: &ValidSpec, service: Service) -> Option<HorizontalPodAutoscaler> {
    let Scaling::Cpu {
        min,
        max,
        target_percent,
    } = *spec.scaling(service)
    else {
        return None;
    };
    let name = service_object_name(spec, service);
    Some(HorizontalPodAutoscaler {
        metadata: object_meta(spec, name.clone(), Some(service.name())),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name,
            },
            min_replicas: Some(min),
            max_replicas: max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(target_percent),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_scaling_adds_replicas_at_once_and_removes_them_one_by_one() {
        // min 2, max 8, 1000 jobs per replica
        let scale = |current, backlog| backlog_replicas(2, 8, 1000, current, backlog);
        assert_eq!(scale(2, Some(0)), 2, "never below min");
        assert_eq!(scale(2, Some(1)), 2);
        assert_eq!(scale(2, Some(4500)), 5, "up at once, rounding up");
        assert_eq!(scale(2, Some(1_000_000)), 8, "never above max");
        assert_eq!(scale(8, Some(0)), 7, "down one at a time");
        assert_eq!(scale(5, Some(4001)), 5);
        assert_eq!(scale(6, None), 6, "unknown backlog keeps the count");
        assert_eq!(
            scale(20, None),
            8,
            "the current count is kept within bounds"
        );
        assert_eq!(scale(0, None), 2);
    }

    #[test]
    fn fixed_scaling_sets_replicas_and_cpu_scaling_leaves_them_to_the_hpa() {
        let observed = Observed::default();
        assert_eq!(replicas(&Scaling::Fixed(3), &observed), Some(3));
        let cpu = Scaling::Cpu {
            min: 2,
            max: 4,
            target_percent: 70,
        };
        assert_eq!(replicas(&cpu, &observed), None);
        let backlog = Scaling::Backlog {
            min: 2,
            max: 8,
            jobs_per_replica: 100,
            initial: 3,
        };
        assert_eq!(
            replicas(&backlog, &observed),
            Some(3),
            "starts from initial"
        );
        let busy = Observed {
            federation_backlog: Some(650),
            federation_sync_replicas: Some(3),
            ..Observed::default()
        };
        assert_eq!(replicas(&backlog, &busy), Some(7));
    }
}
