//! The public route. One Ingress per origin: the origin's gRPC paths (`/<package>.<Service>/`)
//! to the service that serves them, the assets origin to media's assets port. Or Gateway API
//! routes (a GRPCRoute and an HTTPRoute), built as DynamicObjects since k8s-openapi has no
//! Gateway API types.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use crate::crd::{GatewayRoute, IngressRoute};
use crate::service::{ASSETS_PORT, GRPC_PORT, Service};
use crate::validate::ValidSpec;

use super::meta::{object_meta, service_object_name};

const ROUTE_COMPONENT: &str = "route";
/// ingress-nginx speaks HTTP/2 (h2c) to the backend only when told.
pub const NGINX_BACKEND_PROTOCOL: &str = "nginx.ingress.kubernetes.io/backend-protocol";

pub fn grpc_route_name(spec: &ValidSpec) -> String {
    format!("{}-grpc", spec.name)
}

pub fn assets_route_name(spec: &ValidSpec) -> String {
    format!("{}-assets", spec.name)
}

fn backend(spec: &ValidSpec, service: Service, port: &str) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: service_object_name(spec, service),
            port: Some(ServiceBackendPort {
                name: Some(port.to_owned()),
                number: None,
            }),
        }),
        resource: None,
    }
}

fn ingress(
    spec: &ValidSpec,
    route: &IngressRoute,
    name: String,
    host: &str,
    paths: Vec<HTTPIngressPath>,
    extra_annotations: &[(&str, &str)],
) -> Ingress {
    let mut metadata = object_meta(spec, name, Some(ROUTE_COMPONENT));
    let mut annotations = route.annotations.clone();
    // the operator's annotations win: the route does not work without them
    annotations.extend(
        extra_annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: route.class_name.clone(),
            tls: route.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: Some(vec![host.to_owned()]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            rules: Some(vec![IngressRule {
                host: Some(host.to_owned()),
                http: Some(HTTPIngressRuleValue { paths }),
            }]),
            default_backend: None,
        }),
        status: None,
    }
}

/// The gRPC Ingress of the origin and the assets Ingress of the assets origin.
pub fn ingresses(spec: &ValidSpec, route: &IngressRoute) -> Vec<Ingress> {
    let grpc_paths = Service::ALL
        .iter()
        .flat_map(|&service| {
            service
                .public_grpc_services()
                .iter()
                .map(move |grpc| HTTPIngressPath {
                    // Prefix matches whole path segments: /pkg.Service matches /pkg.Service/Method
                    path: Some(format!("/{grpc}")),
                    path_type: "Prefix".to_owned(),
                    backend: backend(spec, service, "grpc"),
                })
        })
        .collect();
    let assets_paths = vec![HTTPIngressPath {
        path: Some("/".to_owned()),
        path_type: "Prefix".to_owned(),
        backend: backend(spec, Service::Media, "assets"),
    }];
    vec![
        ingress(
            spec,
            route,
            grpc_route_name(spec),
            &spec.origin.host,
            grpc_paths,
            &[(NGINX_BACKEND_PROTOCOL, "GRPC")],
        ),
        ingress(
            spec,
            route,
            assets_route_name(spec),
            &spec.assets_origin.host,
            assets_paths,
            &[],
        ),
    ]
}

fn gateway_object(
    spec: &ValidSpec,
    kind: &str,
    name: String,
    body: serde_json::Value,
) -> DynamicObject {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind);
    let mut object = DynamicObject::new(&name, &ApiResource::from_gvk(&gvk)).data(body);
    object.metadata = object_meta(spec, name, Some(ROUTE_COMPONENT));
    object
}

/// A GRPCRoute for the origin (one rule per service, matching its gRPC services) and an
/// HTTPRoute for the assets origin.
pub fn gateway_routes(spec: &ValidSpec, route: &GatewayRoute) -> Vec<DynamicObject> {
    let parents: Vec<serde_json::Value> = route
        .parent_refs
        .iter()
        .map(|p| {
            let mut parent =
                json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": p.name});
            if let Some(ns) = &p.namespace {
                parent["namespace"] = json!(ns);
            }
            if let Some(section) = &p.section_name {
                parent["sectionName"] = json!(section);
            }
            parent
        })
        .collect();
    let rules: Vec<serde_json::Value> = Service::ALL
        .iter()
        .filter(|s| !s.public_grpc_services().is_empty())
        .map(|&service| {
            let matches: Vec<_> = service
                .public_grpc_services()
                .iter()
                .map(|grpc| json!({"method": {"type": "Exact", "service": grpc}}))
                .collect();
            json!({
                "matches": matches,
                "backendRefs": [{"name": service_object_name(spec, service), "port": GRPC_PORT}],
            })
        })
        .collect();
    let grpc = json!({"spec": {
        "parentRefs": parents,
        "hostnames": [spec.origin.host],
        "rules": rules,
    }});
    let assets = json!({"spec": {
        "parentRefs": parents,
        "hostnames": [spec.assets_origin.host],
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"name": service_object_name(spec, Service::Media), "port": ASSETS_PORT}],
        }],
    }});
    vec![
        gateway_object(spec, "GRPCRoute", grpc_route_name(spec), grpc),
        gateway_object(spec, "HTTPRoute", assets_route_name(spec), assets),
    ]
}
