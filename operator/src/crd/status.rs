//! What the operator reports about a Homeserver.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed state of a Homeserver, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HomeserverStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Available, Progressing, Degraded and ReconciliationPaused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions")]
    pub conditions: Vec<Condition>,
    /// Pods of each service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServicesStatus>,
    /// The version every service runs (its migrations applied); none before the first rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
    /// The version being rolled out: spec.version once its migration Job has started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
}

/// Conditions keyed by type, as `kubectl` and server-side apply expect of standard conditions.
fn conditions(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let item = generator.subschema_for::<Condition>();
    schemars::json_schema!({
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"]
    })
}

/// Pods of each service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicesStatus {
    /// identity's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ServiceStatus>,
    /// guild's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild: Option<ServiceStatus>,
    /// federation-sync's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation_sync: Option<ServiceStatus>,
    /// push-relay's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_relay: Option<ServiceStatus>,
    /// media's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<ServiceStatus>,
}

/// Pods of one service, from its Deployment's status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Pods wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pods ready to serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Pods running the current pod template (version and configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
}

/// The condition types the operator reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    /// Every service has its minimum of ready pods.
    Available,
    /// A migration or rollout is under way.
    Progressing,
    /// Something needs an admin: an invalid spec, a failed migration, a missing Secret.
    Degraded,
    /// spec.paused is true and the operator changes nothing.
    ReconciliationPaused,
}

impl ConditionType {
    pub const ALL: [ConditionType; 4] = [
        ConditionType::Available,
        ConditionType::Progressing,
        ConditionType::Degraded,
        ConditionType::ReconciliationPaused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Available => "Available",
            ConditionType::Progressing => "Progressing",
            ConditionType::Degraded => "Degraded",
            ConditionType::ReconciliationPaused => "ReconciliationPaused",
        }
    }
}
