//! The backing services you provide: PostgreSQL, NATS JetStream, an S3-compatible store.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A key of a Secret in the Homeserver's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret.
    pub key: String,
}

/// A Secret in the Homeserver's namespace whose keys are fixed (listed where it is used).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretNameRef {
    /// Name of the Secret.
    pub name: String,
}

/// PostgreSQL: one database with a schema per service, or a database per service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// The Secret holding the PostgreSQL URL(s), e.g. postgres://user:password@host:5432/mzchat.
    pub url_secret_ref: DatabaseSecretRef,
    /// SchemaPerService: one database, each service in its own schema (the URL is under `key`).
    /// DatabasePerService: one URL per service, under the keys identity, guild, federation, push
    /// and media (`key` is ignored).
    #[serde(default)]
    pub layout: DatabaseLayout,
    /// Connections in each service's pool, per pod.
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_connections: i32,
}

fn default_max_connections() -> i32 {
    10
}

/// Where the database URL(s) live.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSecretRef {
    /// Name of the Secret.
    pub name: String,
    /// Key of the URL with layout SchemaPerService (required there); ignored with
    /// DatabasePerService, whose keys are the service names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// How the services' data is laid out in PostgreSQL.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DatabaseLayout {
    /// One database, a schema per service.
    #[default]
    SchemaPerService,
    /// A database (and URL) per service.
    DatabasePerService,
}

/// NATS with JetStream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NatsSpec {
    /// The server's URL: nats://, tls://, ws:// or wss://, e.g. nats://nats.nats:4222; several
    /// servers of one cluster separated by commas (for a cluster behind one Service, its URL
    /// is enough: the client learns the other servers from it).
    pub url: String,
    /// The NATS user's credentials (the content of a .creds file); none: connect without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeyRef>,
    /// JetStream replicas of each stream: 1 for a single NATS server, 3 for a cluster.
    #[serde(default = "default_stream_replicas")]
    #[schemars(range(min = 1, max = 5))]
    pub stream_replicas: i32,
}

fn default_stream_replicas() -> i32 {
    3
}

/// The S3-compatible store for media files.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreSpec {
    /// Endpoint URL, e.g. https://s3.example.org; none: AWS S3 in `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The bucket (created when missing).
    pub bucket: String,
    /// The region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style addressing (endpoint/bucket/key), which most self-hosted stores (MinIO,
    /// SeaweedFS) need, instead of virtual-hosted buckets.
    #[serde(default)]
    pub path_style: bool,
    /// The Secret with the keys accessKeyId and secretAccessKey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretNameRef>,
}

fn default_region() -> String {
    "us-east-1".into()
}
