//! The pipeline's pure validation stage: everything about a Homeserver that its CRD schema
//! cannot say. Every problem is collected (not just the first), each naming the field and what
//! to change, because they reach a cluster admin as the Degraded condition (reason InvalidSpec).

mod access;
mod backends;
mod limits;
mod names;
mod scaling;
#[cfg(test)]
mod tests;
mod urls;

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::crd::{Homeserver, HomeserverSpec};
use crate::service::Service;

pub use scaling::Scaling;
pub use urls::{Endpoint, Origin};

/// Longest Homeserver name: `<name>-federation-sync` must be a Service name (at most 63).
pub const MAX_NAME_LEN: usize = 63 - "-federation-sync".len();

/// One problem with a Homeserver, for the cluster admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// Where, e.g. `spec.services.guild.autoscaling`.
    pub field: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A Homeserver that passed validation, with what the build stage needs already parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec {
    pub name: String,
    pub namespace: String,
    /// The controller owner reference every built object carries.
    pub owner: OwnerReference,
    pub generation: Option<i64>,
    pub spec: HomeserverSpec,
    pub origin: Origin,
    pub assets_origin: Origin,
    /// `repository:tag`, the tag defaulting to the version.
    pub image: String,
    /// Indexed like `Service::ALL`.
    scaling: [Scaling; 5],
    pub egress: Egress,
    /// The Secret with internalToken: spec.keys, or `<name>-keys` that the operator generates.
    pub keys_secret: String,
}

impl ValidSpec {
    pub fn scaling(&self, service: Service) -> &Scaling {
        &self.scaling[Service::ALL.iter().position(|s| *s == service).unwrap_or(0)]
    }

    /// Whether the operator generates the `<name>-keys` Secret.
    pub fn generates_keys(&self) -> bool {
        self.spec.keys.is_none()
    }

    /// http:// origins (localhost development) need mzchatd's --insecure-dev.
    pub fn insecure_dev(&self) -> bool {
        !self.origin.https || !self.assets_origin.https
    }
}

/// Ports the services open connections to, for their NetworkPolicies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Egress {
    /// The NATS servers' ports.
    pub nats: Vec<u16>,
    /// The object store's port.
    pub object_store: u16,
    /// The OTLP collector's port, when traces are exported.
    pub otlp: Option<u16>,
}

/// Problems found so far.
#[derive(Debug, Default)]
struct Errors(Vec<SpecError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(SpecError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn secret_name(&mut self, field: &str, name: &str) {
        if !names::is_dns_subdomain(name) {
            self.add(
                field,
                format!(
                    "{name:?} is not a valid Secret name (lower-case letters, digits, '-' and '.')"
                ),
            );
        }
    }

    fn secret_key(&mut self, field: &str, key: &str) {
        if !names::is_secret_key(key) {
            self.add(
                field,
                format!("{key:?} is not a valid Secret key (letters, digits, '-', '_' and '.')"),
            );
        }
    }
}

/// Checks a Homeserver; every problem found, or what the build stage needs.
pub fn validate(hs: &Homeserver) -> Result<ValidSpec, Vec<SpecError>> {
    let mut errors = Errors::default();
    let meta = metadata(hs, &mut errors);
    let spec = &hs.spec;
    let origins = access::origins(spec, &mut errors);
    let image = access::image(spec, &mut errors);
    access::policies(spec, &mut errors);
    limits::check(spec, &mut errors);
    let scaling = scaling::services(&spec.services, &mut errors);
    let egress = backends::check(spec, &mut errors);
    let (Some((name, namespace, owner)), Some((origin, assets_origin)), Some(egress)) =
        (meta, origins, egress)
    else {
        return Err(errors.0);
    };
    if !errors.0.is_empty() {
        return Err(errors.0);
    }
    let keys_secret = spec
        .keys
        .as_ref()
        .map_or_else(|| format!("{name}-keys"), |k| k.secret_name.clone());
    Ok(ValidSpec {
        name,
        namespace,
        owner,
        generation: hs.metadata.generation,
        spec: spec.clone(),
        origin,
        assets_origin,
        image,
        scaling,
        egress,
        keys_secret,
    })
}

fn metadata(hs: &Homeserver, errors: &mut Errors) -> Option<(String, String, OwnerReference)> {
    let Some(name) = hs.metadata.name.clone() else {
        errors.add("metadata.name", "is missing");
        return None;
    };
    if !names::is_dns_label(&name) {
        errors.add(
            "metadata.name",
            format!("{name:?} must be lower-case letters, digits and '-', starting with a letter: the operator names Services <name>-<service>"),
        );
    }
    if name.len() > MAX_NAME_LEN {
        errors.add(
            "metadata.name",
            format!("{name:?} is {} characters; at most {MAX_NAME_LEN}, so that the Service {name}-federation-sync fits Kubernetes' limit of 63", name.len()),
        );
    }
    let namespace = hs.metadata.namespace.clone();
    if namespace.is_none() {
        errors.add(
            "metadata.namespace",
            "is missing: Homeservers are namespaced",
        );
    }
    let owner = hs.controller_owner_ref(&());
    if owner.is_none() {
        errors.add(
            "metadata.uid",
            "is missing: the Homeserver was not read from the API server",
        );
    }
    Some((name, namespace?, owner?))
}
