//! NetworkPolicies: default deny, the public and admin ingress, and who may call out.

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyEgressRule};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::build;
use crate::build::network_policy::MONITORING_NAMESPACE;

fn policy<'a>(policies: &'a [NetworkPolicy], name: &str) -> &'a NetworkPolicy {
    policies
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("a NetworkPolicy {name}"))
}

fn egress(policy: &NetworkPolicy) -> &[NetworkPolicyEgressRule] {
    policy
        .spec
        .as_ref()
        .and_then(|s| s.egress.as_deref())
        .unwrap_or_default()
}

/// TCP ports the policy lets the pods reach at any address.
fn open_tcp_ports(policy: &NetworkPolicy) -> Vec<i32> {
    egress(policy)
        .iter()
        .filter(|rule| rule.to.is_none())
        .flat_map(|rule| rule.ports.iter().flatten())
        .filter(|p| p.protocol.as_deref() == Some("TCP"))
        .filter_map(|p| match p.port {
            Some(IntOrString::Int(n)) => Some(n),
            _ => None,
        })
        .collect()
}

#[test]
fn everything_is_denied_unless_allowed() {
    let (_, desired) = build("valid-small", "{}");
    let deny = policy(&desired.network_policies, "small-default-deny");
    let spec = deny.spec.as_ref().expect("spec");
    assert_eq!(
        spec.policy_types.as_deref(),
        Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
    );
    assert_eq!(spec.ingress.as_deref(), Some(&[][..]));
    assert_eq!(spec.egress.as_deref(), Some(&[][..]));
    let selected = spec
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .expect("labels");
    assert_eq!(
        selected
            .get("app.kubernetes.io/instance")
            .map(String::as_str),
        Some("small")
    );
    assert!(
        !selected.contains_key("app.kubernetes.io/component"),
        "every pod of the homeserver"
    );
    assert_eq!(
        desired.network_policies.len(),
        7,
        "deny, five services, migrations"
    );
}

#[test]
fn only_federation_sync_and_push_relay_reach_any_host_on_443() {
    let (_, desired) = build("valid-small", "{}");
    for (name, calls_out) in [
        ("small-identity", false),
        ("small-guild", false),
        ("small-federation-sync", true),
        ("small-push-relay", true),
        ("small-media", false),
    ] {
        let ports = open_tcp_ports(policy(&desired.network_policies, name));
        assert_eq!(ports.contains(&443), calls_out, "{name}: {ports:?}");
        assert!(ports.contains(&5432), "{name} reaches PostgreSQL");
        assert!(ports.contains(&4222), "{name} reaches NATS");
    }
    let media = open_tcp_ports(policy(&desired.network_policies, "small-media"));
    assert!(
        media.contains(&8333),
        "media reaches the object store's port"
    );
    let guild = open_tcp_ports(policy(&desired.network_policies, "small-guild"));
    assert!(!guild.contains(&8333), "only media reaches the store");
}

#[test]
fn every_pod_resolves_names_and_services_reach_each_other() {
    let (_, desired) = build("valid-production", "{}");
    for p in &desired.network_policies[1..] {
        let dns = egress(p).iter().any(|r| {
            r.ports.iter().flatten().any(|port| {
                port.port == Some(IntOrString::Int(53)) && port.protocol.as_deref() == Some("UDP")
            })
        });
        assert!(dns, "{:?} allows DNS", p.metadata.name);
        assert!(
            open_tcp_ports(p).contains(&4317),
            "traces reach the collector"
        );
    }
    let guild = policy(&desired.network_policies, "chat-guild");
    let peers = egress(guild).iter().any(|r| {
        r.to.iter()
            .flatten()
            .any(|peer| peer.pod_selector.is_some())
            && r.ports
                .iter()
                .flatten()
                .any(|p| p.port == Some(IntOrString::Int(7600)))
    });
    assert!(peers, "guild calls identity and media on 7600");
    let migrate = policy(&desired.network_policies, "chat-migrate");
    assert!(open_tcp_ports(migrate).contains(&5432));
    assert!(
        !open_tcp_ports(migrate).contains(&4222),
        "migrations need no bus"
    );
}

#[test]
fn grpc_is_public_and_metrics_only_for_monitoring() {
    let (_, desired) = build("valid-small", "{}");
    for p in &desired.network_policies[1..6] {
        let rules = p
            .spec
            .as_ref()
            .and_then(|s| s.ingress.as_deref())
            .unwrap_or_default();
        let public = rules
            .iter()
            .find(|r| r.from.is_none())
            .expect("a public rule");
        let public_ports: Vec<_> = public
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.port.clone())
            .collect();
        assert!(public_ports.contains(&IntOrString::Int(7600)));
        assert!(
            !public_ports.contains(&IntOrString::Int(9600)),
            "admin is not public"
        );
        let admin = rules
            .iter()
            .find(|r| r.from.is_some())
            .expect("an admin rule");
        let namespaces: Vec<_> = admin
            .from
            .iter()
            .flatten()
            .filter_map(|peer| peer.namespace_selector.as_ref()?.match_labels.as_ref())
            .collect();
        assert!(
            namespaces
                .iter()
                .any(|l| l.get("kubernetes.io/metadata.name").map(String::as_str)
                    == Some(MONITORING_NAMESPACE))
        );
        assert_eq!(
            admin.ports.as_deref().map(|p| p[0].port.clone()),
            Some(Some(IntOrString::Int(9600)))
        );
    }
    let media = policy(&desired.network_policies, "small-media");
    let rules = media
        .spec
        .as_ref()
        .and_then(|s| s.ingress.as_deref())
        .unwrap_or_default();
    assert!(
        rules[0]
            .ports
            .iter()
            .flatten()
            .any(|p| p.port == Some(IntOrString::Int(7601))),
        "assets are public"
    );
}
