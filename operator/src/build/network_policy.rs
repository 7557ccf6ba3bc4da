//! NetworkPolicies: everything of a homeserver is denied unless a policy below allows it.
//!
//! - ingress: gRPC (the public API, also the internal APIs, which require the internal token)
//!   and media's assets from anywhere; the admin port (metrics) only from monitoring namespaces;
//! - egress: DNS, PostgreSQL, NATS, the OTLP collector, the other services of the homeserver;
//!   media also the object store; federation-sync (calls to other servers) and push-relay (push
//!   distributors, FCM) any host on 443. The database's host is in a Secret the operator does
//!   not read, so database egress is allowed by port (5432), not by address.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::service::{ADMIN_PORT, ASSETS_PORT, GRPC_PORT, Service};
use crate::validate::ValidSpec;

use super::meta::{object_meta, selector, selector_labels, service_object_name};

/// Namespaces allowed to scrape the admin port: one named `monitoring`, or any labelled so.
pub const MONITORING_NAMESPACE: &str = "monitoring";
pub const MONITORING_NAMESPACE_LABEL: &str = "mzchat.io/monitoring";
pub const POSTGRES_PORT: u16 = 5432;
/// HTTPS to other servers and push services.
pub const FEDERATION_PORT: u16 = 443;
const DNS_PORT: u16 = 53;

/// The migration Job's pods' component label.
pub const MIGRATE_COMPONENT: &str = "migrate";

fn port(number: u16, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(number))),
        protocol: Some(protocol.to_owned()),
        end_port: None,
    }
}

fn tcp(numbers: &[u16]) -> Vec<NetworkPolicyPort> {
    numbers.iter().map(|&n| port(n, "TCP")).collect()
}

/// To any address on these ports.
fn egress_to_any(ports: Vec<NetworkPolicyPort>) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: None,
        ports: Some(ports),
    }
}

fn policy(
    spec: &ValidSpec,
    name: String,
    component: Option<&str>,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: object_meta(spec, name, component),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(selector_labels(spec, component))),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    }
}

/// Every policy of the homeserver: the default deny, one per service, one for migrations.
pub fn network_policies(spec: &ValidSpec) -> Vec<NetworkPolicy> {
    let mut policies = vec![policy(
        spec,
        format!("{}-default-deny", spec.name),
        None,
        Vec::new(),
        Vec::new(),
    )];
    policies.extend(Service::ALL.iter().map(|&s| for_service(spec, s)));
    policies.push(policy(
        spec,
        format!("{}-{MIGRATE_COMPONENT}", spec.name),
        Some(MIGRATE_COMPONENT),
        Vec::new(),
        backend_egress(spec, false),
    ));
    policies
}

fn for_service(spec: &ValidSpec, service: Service) -> NetworkPolicy {
    let mut public = vec![GRPC_PORT];
    if service == Service::Media {
        public.push(ASSETS_PORT);
    }
    let ingress = vec![
        NetworkPolicyIngressRule {
            from: None,
            ports: Some(public.iter().map(|&p| port_i32(p)).collect()),
        },
        NetworkPolicyIngressRule {
            from: Some(monitoring_peers()),
            ports: Some(vec![port_i32(ADMIN_PORT)]),
        },
    ];
    let mut egress = backend_egress(spec, true);
    match service {
        Service::Media => egress.push(egress_to_any(tcp(&[spec.egress.object_store]))),
        Service::FederationSync | Service::PushRelay => {
            egress.push(egress_to_any(tcp(&[FEDERATION_PORT])));
        }
        Service::Identity | Service::Guild => {}
    }
    policy(
        spec,
        service_object_name(spec, service),
        Some(service.name()),
        ingress,
        egress,
    )
}

fn port_i32(number: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(number)),
        protocol: Some("TCP".to_owned()),
        end_port: None,
    }
}

fn monitoring_peers() -> Vec<NetworkPolicyPeer> {
    let namespaces = |key: &str, value: &str| NetworkPolicyPeer {
        namespace_selector: Some(selector(BTreeMap::from([(
            key.to_owned(),
            value.to_owned(),
        )]))),
        ..NetworkPolicyPeer::default()
    };
    vec![
        namespaces("kubernetes.io/metadata.name", MONITORING_NAMESPACE),
        namespaces(MONITORING_NAMESPACE_LABEL, "true"),
    ]
}

/// DNS, PostgreSQL and traces for every pod; NATS and the other services for service pods.
fn backend_egress(spec: &ValidSpec, service_pod: bool) -> Vec<NetworkPolicyEgressRule> {
    let mut rules = vec![
        egress_to_any(vec![port(DNS_PORT, "UDP"), port(DNS_PORT, "TCP")]),
        egress_to_any(tcp(&[POSTGRES_PORT])),
    ];
    if let Some(otlp) = spec.egress.otlp {
        rules.push(egress_to_any(tcp(&[otlp])));
    }
    if service_pod {
        rules.push(egress_to_any(tcp(&spec.egress.nats)));
        rules.push(NetworkPolicyEgressRule {
            to: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(selector(selector_labels(spec, None))),
                namespace_selector: None,
                ip_block: None,
            }]),
            ports: Some(vec![port_i32(GRPC_PORT)]),
        });
    }
    rules
}
