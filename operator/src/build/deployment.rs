//! One Deployment per service: `mzchatd <service>`, hardened, probed, spread across zones and
//! nodes, and rolled whenever its configuration checksum changes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, GRPCAction, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::crd::{PullPolicy, Resources};
use crate::service::{ADMIN_PORT, ASSETS_PORT, GRPC_PORT, Service};
use crate::validate::ValidSpec;

use super::meta::{labels, object_meta, selector, selector_labels, service_object_name};
use super::pod::{
    CONFIG_CHECKSUM_ANNOTATION, config_checksum, container_security, image_pull_secrets,
    pod_security,
};
use super::{env, volumes};

/// mzchatd finishes in-flight work within 20 s of SIGTERM (its default grace).
const TERMINATION_GRACE_SECONDS: i64 = 30;

/// `replicas`: None leaves the count to an HPA (setting it would fight the autoscaler).
pub fn deployment(
    spec: &ValidSpec,
    service: Service,
    replicas: Option<i32>,
    secret_versions: &BTreeMap<String, String>,
) -> Deployment {
    let component = Some(service.name());
    let (volumes, mounts) = volumes::for_service(spec, service);
    let container = Container {
        name: "mzchatd".to_owned(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some(pull_policy(spec.spec.image.pull_policy).to_owned()),
        args: Some(vec![service.name().to_owned()]),
        env: Some(env::service(spec, service)),
        ports: Some(ports(service)),
        // Ready only when the database, the bus (and for media the store) answer: mzchatd's
        // gRPC health turns NOT_SERVING otherwise.
        readiness_probe: Some(Probe {
            grpc: Some(GRPCAction {
                port: GRPC_PORT,
                service: None,
            }),
            period_seconds: Some(5),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        // Alive is the process answering at all: a database outage must not restart every pod,
        // so liveness uses the admin listener's /healthz, not the gRPC health above.
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".to_owned()),
                port: IntOrString::String("admin".to_owned()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(10),
            failure_threshold: Some(6),
            ..Probe::default()
        }),
        resources: resources(service_resources(spec, service)),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let checksum = config_checksum(&[&container], &volumes, secret_versions);
    let pod = PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        security_context: Some(pod_security()),
        automount_service_account_token: Some(false),
        // Service links would add <NAME>_<SERVICE>_* variables next to mzchatd's MZCHAT_* ones.
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        image_pull_secrets: image_pull_secrets(spec),
        topology_spread_constraints: Some(spread(spec, service)),
        ..PodSpec::default()
    };
    Deployment {
        metadata: object_meta(spec, service_object_name(spec, service), component),
        spec: Some(DeploymentSpec {
            replicas,
            selector: selector(selector_labels(spec, component)),
            revision_history_limit: Some(5),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(spec, component)),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_CHECKSUM_ANNOTATION.to_owned(),
                        checksum,
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

pub fn pull_policy(policy: PullPolicy) -> &'static str {
    match policy {
        PullPolicy::Always => "Always",
        PullPolicy::IfNotPresent => "IfNotPresent",
        PullPolicy::Never => "Never",
    }
}

fn ports(service: Service) -> Vec<ContainerPort> {
    let port = |name: &str, number: i32| ContainerPort {
        name: Some(name.to_owned()),
        container_port: number,
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    };
    let mut ports = vec![port("grpc", GRPC_PORT), port("admin", ADMIN_PORT)];
    if service == Service::Media {
        ports.push(port("assets", ASSETS_PORT));
    }
    ports
}

fn service_resources(spec: &ValidSpec, service: Service) -> Option<&Resources> {
    let s = &spec.spec.services;
    match service {
        Service::Identity => s.identity.resources.as_ref(),
        Service::Guild => s.guild.resources.as_ref(),
        Service::FederationSync => s.federation_sync.resources.as_ref(),
        Service::PushRelay => s.push_relay.resources.as_ref(),
        Service::Media => s.media.resources.as_ref(),
    }
}

fn resources(resources: Option<&Resources>) -> Option<ResourceRequirements> {
    let r = resources?;
    let non_empty = |m: &BTreeMap<_, _>| (!m.is_empty()).then(|| m.clone());
    Some(ResourceRequirements {
        requests: non_empty(&r.requests),
        limits: non_empty(&r.limits),
        claims: None,
    })
}

/// Replicas spread over zones and then nodes, preferred rather than required so a small
/// cluster still schedules them; pod-template-hash keeps a rollout's old pods out of the count.
fn spread(spec: &ValidSpec, service: Service) -> Vec<TopologySpreadConstraint> {
    ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            topology_key: key.to_owned(),
            max_skew: 1,
            when_unsatisfiable: "ScheduleAnyway".to_owned(),
            label_selector: Some(selector(selector_labels(spec, Some(service.name())))),
            match_label_keys: Some(vec!["pod-template-hash".to_owned()]),
            ..TopologySpreadConstraint::default()
        })
        .collect()
}
