//! How many pods each service runs, and who decides: the spec, an HPA, or the operator from
//! the federation job backlog.

use crate::crd::{Autoscaling, FederationSyncAutoscaling, ServiceSpec, ServicesSpec};
use crate::service::Service;

use super::Errors;

/// CPU target when autoscaling names none, as the HPA controller's own default.
pub const DEFAULT_CPU_PERCENT: i32 = 80;

/// Who sets a service's replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scaling {
    /// The spec: exactly this many.
    Fixed(i32),
    /// A HorizontalPodAutoscaler on CPU; the Deployment leaves replicas to it.
    Cpu {
        min: i32,
        max: i32,
        target_percent: i32,
    },
    /// The operator, from federation-sync's job backlog (no HPA, no metrics adapter): replicas
    /// within min..=max, starting from `initial`.
    Backlog {
        min: i32,
        max: i32,
        jobs_per_replica: i64,
        initial: i32,
    },
}

impl Scaling {
    /// Fewest pods the service runs (what a disruption budget protects).
    pub fn min_replicas(&self) -> i32 {
        match self {
            Scaling::Fixed(replicas) => *replicas,
            Scaling::Cpu { min, .. } | Scaling::Backlog { min, .. } => *min,
        }
    }
}

pub(super) fn services(spec: &ServicesSpec, errors: &mut Errors) -> [Scaling; 5] {
    Service::ALL.map(|service| match service {
        Service::Identity => plain(service, &spec.identity, errors),
        Service::Guild => plain(service, &spec.guild, errors),
        Service::FederationSync => federation_sync(&spec.federation_sync, errors),
        Service::PushRelay => plain(service, &spec.push_relay, errors),
        Service::Media => plain(service, &spec.media, errors),
    })
}

fn plain(service: Service, spec: &ServiceSpec, errors: &mut Errors) -> Scaling {
    replicas(service, spec.replicas, errors);
    match &spec.autoscaling {
        None => Scaling::Fixed(spec.replicas),
        Some(Autoscaling {
            min_replicas,
            max_replicas,
            target_cpu_utilization_percentage,
        }) => {
            let field = format!("{}.autoscaling", service.field());
            bounds(&field, *min_replicas, *max_replicas, errors);
            Scaling::Cpu {
                min: *min_replicas,
                max: *max_replicas,
                target_percent: cpu_target(&field, *target_cpu_utilization_percentage, errors),
            }
        }
    }
}

fn federation_sync(spec: &ServiceSpec<FederationSyncAutoscaling>, errors: &mut Errors) -> Scaling {
    let service = Service::FederationSync;
    replicas(service, spec.replicas, errors);
    let Some(autoscaling) = &spec.autoscaling else {
        return Scaling::Fixed(spec.replicas);
    };
    let field = format!("{}.autoscaling", service.field());
    let (min, max) = (autoscaling.min_replicas, autoscaling.max_replicas);
    bounds(&field, min, max, errors);
    let target_percent = cpu_target(
        &field,
        autoscaling.target_cpu_utilization_percentage,
        errors,
    );
    match autoscaling.target_job_backlog {
        None => Scaling::Cpu {
            min,
            max,
            target_percent,
        },
        Some(jobs) => {
            if jobs < 1 {
                errors.add(
                    format!("{field}.targetJobBacklog"),
                    format!("is {jobs}; it is the number of waiting jobs per replica to aim for, at least 1"),
                );
            }
            Scaling::Backlog {
                min,
                max,
                jobs_per_replica: jobs,
                initial: spec.replicas.clamp(min.max(1), max.max(min).max(1)),
            }
        }
    }
}

fn replicas(service: Service, replicas: i32, errors: &mut Errors) {
    if replicas < 0 {
        errors.add(
            format!("{}.replicas", service.field()),
            format!("is {replicas}; it must be 0 or more"),
        );
    }
}

fn bounds(field: &str, min: i32, max: i32, errors: &mut Errors) {
    if min < 1 {
        errors.add(
            format!("{field}.minReplicas"),
            format!("is {min}; autoscaling needs at least 1 replica (use replicas: 0 without autoscaling to stop a service)"),
        );
    }
    if max < min {
        errors.add(
            format!("{field}.maxReplicas"),
            format!("is {max}, less than minReplicas ({min})"),
        );
    }
}

fn cpu_target(field: &str, target: Option<i32>, errors: &mut Errors) -> i32 {
    let target = target.unwrap_or(DEFAULT_CPU_PERCENT);
    if !(1..=100).contains(&target) {
        errors.add(
            format!("{field}.targetCPUUtilizationPercentage"),
            format!("is {target}; it is a percentage of the CPU request, between 1 and 100"),
        );
    }
    target
}
