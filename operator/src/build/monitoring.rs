//! A ServiceMonitor (prometheus-operator) scraping every service's admin port, as a
//! DynamicObject: its CRD is not part of Kubernetes, and the operator makes it only where it
//! is installed.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use crate::validate::ValidSpec;

use super::meta::{object_meta, selector_labels};

pub fn service_monitor(spec: &ValidSpec) -> DynamicObject {
    let gvk = GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor");
    let body = json!({"spec": {
        // every Service of this homeserver (the component label is left out)
        "selector": {"matchLabels": selector_labels(spec, None)},
        "endpoints": [{"port": "admin", "path": "/metrics", "interval": "30s"}],
    }});
    let mut object = DynamicObject::new(&spec.name, &ApiResource::from_gvk(&gvk)).data(body);
    object.metadata = object_meta(spec, spec.name.clone(), Some("metrics"));
    object
}
