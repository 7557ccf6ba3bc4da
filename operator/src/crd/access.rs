//! The image, credentials, policies and the public route.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;

/// The mzchatd container image.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository.
    #[serde(default = "default_repository")]
    pub repository: String,
    /// Image tag; none: `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// When the kubelet pulls the image.
    #[serde(default)]
    pub pull_policy: PullPolicy,
    /// Names of docker-registry Secrets to pull the image with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_secrets: Vec<String>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self {
            repository: default_repository(),
            tag: None,
            pull_policy: PullPolicy::default(),
            pull_secrets: Vec::new(),
        }
    }
}

fn default_repository() -> String {
    "ghcr.io/mzchat/mzchatd".into()
}

/// A container's imagePullPolicy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum PullPolicy {
    /// Pull on every start.
    Always,
    /// Pull when the node does not have the image.
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

/// The internal service-to-service token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeysSpec {
    /// A Secret with the key internalToken (a long random string).
    pub secret_name: String,
}

/// Who may register a local account.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationSpec {
    /// Open: anyone whose certificate names this server as home; Token: only with a
    /// registration token; Closed: no new accounts.
    #[serde(default)]
    pub policy: RegistrationPolicy,
    /// The registration tokens, comma-separated in one key. Required with policy Token, not
    /// allowed otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_secret_ref: Option<SecretKeyRef>,
}

/// Registration policies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum RegistrationPolicy {
    /// Anyone whose certificate names this server as home may register.
    #[default]
    Open,
    /// Registration needs one of the registration tokens.
    Token,
    /// No new local accounts.
    Closed,
}

/// Servers to federate with, by origin (https://chat.example.org), host (chat.example.org) or
/// subdomains (*.example.org).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederationSpec {
    /// When not empty, only servers matching an entry federate with this one.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Servers refused even when allowed.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Push delivery settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSpec {
    /// A Google service account's JSON key for FCM HTTP v1; none: devices cannot register FCM
    /// tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fcm_credentials_secret_ref: Option<SecretKeyRef>,
}

/// Traces and logs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySpec {
    /// OTLP/gRPC endpoint for traces, e.g. http://otel-collector.observability:4317; none: no
    /// traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Log lines as json or text.
    #[serde(default)]
    pub log_format: LogFormat,
}

/// Log formats.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// The public route: exactly one of ingress or gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    /// Two Ingresses: the origin's gRPC paths to each service, the assets origin to media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressRoute>,
    /// Gateway API routes: a GRPCRoute for the origin, an HTTPRoute for the assets origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayRoute>,
}

/// Ingress settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressRoute {
    /// The IngressClass; none: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// Annotations added to both Ingresses, e.g. cert-manager.io/cluster-issuer.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// A TLS Secret whose certificate covers both origins' hosts; none: TLS is terminated
    /// elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
}

/// Gateway API settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRoute {
    /// The Gateways (listeners) the routes attach to.
    pub parent_refs: Vec<GatewayParentRef>,
}

/// A Gateway listener the routes attach to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayParentRef {
    /// Name of the Gateway.
    pub name: String,
    /// Namespace of the Gateway; none: the Homeserver's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Listener of the Gateway; none: every listener that admits the routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}
