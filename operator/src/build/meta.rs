//! Names, labels and owner references every built object shares.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::service::Service;
use crate::validate::ValidSpec;

pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";
pub const MANAGED_BY: &str = "mzchat-operator";

/// `<name>-<service>`: the Deployment, Service, HPA, PDB and NetworkPolicy of a service.
pub fn service_object_name(spec: &ValidSpec, service: Service) -> String {
    format!("{}-{}", spec.name, service.name())
}

/// Labels that select a component's pods (never change: Deployment selectors are immutable).
/// Without a component, they select every pod of the homeserver.
pub fn selector_labels(spec: &ValidSpec, component: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (NAME_LABEL.to_owned(), "mzchat".to_owned()),
        (INSTANCE_LABEL.to_owned(), spec.name.clone()),
    ]);
    if let Some(component) = component {
        labels.insert(COMPONENT_LABEL.to_owned(), component.to_owned());
    }
    labels
}

/// Every label the operator puts on an object.
pub fn labels(spec: &ValidSpec, component: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = selector_labels(spec, component);
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    labels.insert(VERSION_LABEL.to_owned(), spec.spec.version.clone());
    labels
}

pub fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        ..LabelSelector::default()
    }
}

/// Metadata of an object the Homeserver owns (deleted with it by garbage collection).
pub fn object_meta(spec: &ValidSpec, name: String, component: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(spec.namespace.clone()),
        labels: Some(labels(spec, component)),
        owner_references: Some(vec![spec.owner.clone()]),
        ..ObjectMeta::default()
    }
}
