//! Per-service replicas, resources and autoscaling.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Replicas, resources and autoscaling of each service. Every service is stateless (state lives
/// in PostgreSQL, NATS and S3), so any of them can run several replicas.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicesSpec {
    /// identity: accounts, devices, sessions, profiles.
    #[serde(default)]
    pub identity: ServiceSpec,
    /// guild: guilds, channels, roles, messages and the event streams clients hold open.
    #[serde(default)]
    pub guild: ServiceSpec,
    /// federation-sync: every outbound call to other servers, from a shared job queue.
    #[serde(default)]
    pub federation_sync: ServiceSpec<FederationSyncAutoscaling>,
    /// push-relay: push distributors, FCM tokens and relayed pushes.
    #[serde(default)]
    pub push_relay: ServiceSpec,
    /// media: uploads and downloads, and the assets origin.
    #[serde(default)]
    pub media: ServiceSpec,
}

/// How one service runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", bound(deserialize = "A: Deserialize<'de>"))]
pub struct ServiceSpec<A = Autoscaling> {
    /// Replicas without autoscaling; with autoscaling, the starting count (kept within
    /// minReplicas and maxReplicas).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// CPU and memory requests and limits of each pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Horizontal autoscaling; without it the service runs `replicas` pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<A>,
}

impl<A> Default for ServiceSpec<A> {
    fn default() -> Self {
        Self {
            replicas: default_replicas(),
            resources: None,
            autoscaling: None,
        }
    }
}

fn default_replicas() -> i32 {
    2
}

/// Requests and limits, as in a container's `resources` (claims are not supported).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Minimum resources each pod is scheduled with, e.g. {cpu: 100m, memory: 128Mi}.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "quantities")]
    pub requests: BTreeMap<String, Quantity>,
    /// Most resources each pod may use, e.g. {memory: 512Mi}.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "quantities")]
    pub limits: BTreeMap<String, Quantity>,
}

/// A map of resource names to quantities, without Quantity's long description repeated in every
/// place it is used.
fn quantities(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {
            "description": "A quantity: an integer, or a string such as 100m, \"0.5\" or 128Mi.",
            "x-kubernetes-int-or-string": true
        }
    })
}

/// CPU-based horizontal autoscaling (an autoscaling/v2 HorizontalPodAutoscaler).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    /// Fewest replicas.
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Most replicas; at least minReplicas.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Average CPU utilization to aim for, in percent of the CPU request (default 80).
    #[serde(
        rename = "targetCPUUtilizationPercentage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: Option<i32>,
}

/// Autoscaling of federation-sync: on CPU like the other services, or on its job backlog.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederationSyncAutoscaling {
    /// Fewest replicas.
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Most replicas; at least minReplicas.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Average CPU utilization to aim for, in percent of the CPU request (default 80). Ignored
    /// when targetJobBacklog is set.
    #[serde(
        rename = "targetCPUUtilizationPercentage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: Option<i32>,
    /// Federation jobs waiting per replica to aim for. When set, the operator itself sets
    /// federation-sync's replicas from the job backlog (within minReplicas and maxReplicas)
    /// instead of making a HorizontalPodAutoscaler, so no metrics adapter is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub target_job_backlog: Option<i64>,
}
