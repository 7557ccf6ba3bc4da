//! A Service per service, `<name>-<service>`: gRPC 7600, admin 9600, and media's assets 7601.

use k8s_openapi::api::core::v1::{Service as KubeService, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::service::{ADMIN_PORT, ASSETS_PORT, GRPC_PORT, Service};
use crate::validate::ValidSpec;

use super::meta::{object_meta, selector_labels, service_object_name};

pub fn service(spec: &ValidSpec, service: Service) -> KubeService {
    let component = Some(service.name());
    // appProtocol tells Gateway implementations and meshes to speak HTTP/2 without TLS (h2c).
    let port = |name: &str, number: i32, protocol: &str| ServicePort {
        name: Some(name.to_owned()),
        port: number,
        target_port: Some(IntOrString::String(name.to_owned())),
        protocol: Some("TCP".to_owned()),
        app_protocol: Some(protocol.to_owned()),
        ..ServicePort::default()
    };
    let mut ports = vec![
        port("grpc", GRPC_PORT, "kubernetes.io/h2c"),
        port("admin", ADMIN_PORT, "http"),
    ];
    if service == Service::Media {
        ports.push(port("assets", ASSETS_PORT, "http"));
    }
    KubeService {
        metadata: object_meta(spec, service_object_name(spec, service), component),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(spec, component)),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
