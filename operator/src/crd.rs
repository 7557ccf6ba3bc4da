//! The `Homeserver` custom resource (`mzchat.io/v1alpha1`). The Rust types are the source of
//! truth: `mzchat-operator crd` prints the CustomResourceDefinition generated from them, and
//! every doc comment becomes a description in its schema. The fields are exactly what
//! `charts/mzchat/templates/homeserver.yaml` renders.

mod access;
mod backends;
mod services;
mod status;

use std::collections::BTreeMap;

use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use access::{
    FederationSpec, GatewayParentRef, GatewayRoute, ImageSpec, IngressRoute, KeysSpec, LogFormat,
    PullPolicy, PushSpec, RegistrationPolicy, RegistrationSpec, RouteSpec, TelemetrySpec,
};
pub use backends::{
    DatabaseLayout, DatabaseSecretRef, DatabaseSpec, NatsSpec, ObjectStoreSpec, SecretKeyRef,
    SecretNameRef,
};
pub use services::{Autoscaling, FederationSyncAutoscaling, Resources, ServiceSpec, ServicesSpec};
pub use status::{ConditionType, HomeserverStatus, ServiceStatus, ServicesStatus};

/// The homeserver wanted: its origins, version, the services' scale, the PostgreSQL, NATS and
/// S3-compatible store it uses (which you provide), its policies and its public route.
// Each printcolumn(...) repeats the same keys, which clippy mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "mzchat.io",
    version = "v1alpha1",
    kind = "Homeserver",
    namespaced,
    shortname = "hs",
    status = "HomeserverStatus",
    derive = "PartialEq",
    doc = "An mzchat homeserver: the mzchat operator runs one Deployment per service (identity, guild, federation-sync, push-relay, media), their Services, autoscalers, disruption budgets, network policies, the public route and a migration Job before every version change.",
    printcolumn(name = "Origin", type_ = "string", json_path = ".spec.origin"),
    printcolumn(
        name = "Version",
        type_ = "string",
        description = "The version every service runs",
        json_path = ".status.currentVersion"
    ),
    printcolumn(
        name = "Available",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct HomeserverSpec {
    /// The public gRPC origin: `https://host[:port]` with no path, e.g. https://chat.example.org.
    /// It names this server to clients and other servers, so changing it moves every account.
    pub origin: String,
    /// The public origin of the assets server (media over plain HTTP), e.g.
    /// https://media.example.org. Its host must differ from the origin's.
    pub assets_origin: String,
    /// The mzchatd version to run, e.g. 0.1.0. Changing it runs the new version's migrations in a
    /// Job first and rolls the services only when the Job has completed.
    pub version: String,
    /// The mzchatd container image.
    #[serde(default)]
    pub image: ImageSpec,
    /// Replicas, resources and autoscaling of each service.
    #[serde(default)]
    pub services: ServicesSpec,
    /// PostgreSQL: where the URL (or one URL per service) comes from, and pool sizes.
    pub database: DatabaseSpec,
    /// NATS with JetStream: the event bus and the federation job queue.
    pub nats: NatsSpec,
    /// The S3-compatible object store that keeps media files.
    pub object_store: ObjectStoreSpec,
    /// The internal service-to-service token. Without it the operator generates the Secret
    /// `<name>-keys` once and keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeysSpec>,
    /// Who may register a local account.
    #[serde(default)]
    pub registration: RegistrationSpec,
    /// Which servers this one federates with.
    #[serde(default)]
    pub federation: FederationSpec,
    /// Rate limits changed from mzchatd's defaults, by limit name: message.send, typing,
    /// invite.create, guild.join, login, upload (per user and device), federation, push.relay
    /// (per calling server), ip.login, ip.invite, ip.server_info, ip.sync_mailbox (per client
    /// address). Each value is `COUNT/PERIOD` (COUNT calls at once, then COUNT per PERIOD on
    /// average; PERIOD a number with s, m or h between 1s and 24h), e.g. 30/10s, 5/1m or 100/1h,
    /// or `off`. `all: off` lifts every limit not named with a rule. Limits not named keep
    /// their defaults; empty: the defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rate_limits: BTreeMap<String, String>,
    /// How many proxies in front of mzchatd append to X-Forwarded-For: it must equal their
    /// number, because per-address limits (ip.*) key on the address the farthest of them saw.
    /// 1 (the default) for the route's Ingress controller or Gateway; one more for each HTTP
    /// proxy or L7 load balancer in front of that (a TCP load balancer does not count); 0 only
    /// when clients connect to the pods directly. Too few, and every client shares a proxy's
    /// address and its limits; too many, and clients choose their own address by sending the
    /// header.
    #[serde(default = "default_forwarded_for_hops")]
    #[schemars(range(min = 0, max = 10))]
    pub forwarded_for_hops: i32,
    /// Push delivery settings. UnifiedPush, ntfy and Web Push need none; FCM needs a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
    /// Traces and logs.
    #[serde(default)]
    pub telemetry: TelemetrySpec,
    /// The public route to the two origins: an Ingress or a Gateway API route. Without it the
    /// Services exist but nothing outside the cluster reaches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteSpec>,
    /// Stop reconciling: the operator leaves every object as it is (for manual work on the
    /// database) and reports the ReconciliationPaused condition.
    #[serde(default)]
    pub paused: bool,
}

/// The route (an Ingress controller or a Gateway) is one proxy in front of mzchatd.
fn default_forwarded_for_hops() -> i32 {
    1
}

/// The CustomResourceDefinition as YAML, as `make crds` writes it.
pub fn crd_yaml() -> Result<String, CrdError> {
    let mut crd = serde_json::to_value(Homeserver::crd())?;
    unwrap_descriptions(&mut crd);
    let body = serde_saphyr::to_string(&crd)?;
    Ok(format!(
        "# Generated from operator/src/crd.rs by `make crds`; do not edit.\n---\n{body}"
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("crd to json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("crd to yaml: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
}

/// Doc comments are wrapped at 100 columns; descriptions read better (`kubectl explain`) as
/// paragraphs, so single line breaks become spaces and blank lines stay.
fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| paragraph.replace('\n', " "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(child),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}
