//! mzchatd's configuration: it reads only `MZCHAT_*` (and `OTEL_*`) environment variables, so
//! this is the whole of what a pod is told. Secrets are referenced, never copied.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};

use crate::crd::{DatabaseLayout, LogFormat, RegistrationPolicy};
use crate::service::{ADMIN_PORT, ASSETS_PORT, GRPC_PORT, Service};
use crate::validate::ValidSpec;

use super::meta::service_object_name;
use super::volumes::{FCM_FILE, NATS_CREDS_FILE};

/// Keys of the Secret named by spec.keys (or generated as `<name>-keys`).
pub const INTERNAL_TOKEN_KEY: &str = "internalToken";
/// Keys of the object store's credentials Secret.
pub const S3_ACCESS_KEY_ID_KEY: &str = "accessKeyId";
pub const S3_SECRET_ACCESS_KEY_KEY: &str = "secretAccessKey";

fn value(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// Where another service's gRPC API answers inside the cluster.
fn internal_url(spec: &ValidSpec, service: Service) -> String {
    format!(
        "http://{}.{}.svc:{GRPC_PORT}",
        service_object_name(spec, service),
        spec.namespace
    )
}

/// `MZCHAT_DATABASE_URL` for one service's migrations or process.
pub fn database_url(spec: &ValidSpec, service: Service) -> EnvVar {
    let db = &spec.spec.database;
    let key = match db.layout {
        DatabaseLayout::DatabasePerService => service.database_key(),
        // validation made sure the key is there
        DatabaseLayout::SchemaPerService => db.url_secret_ref.key.as_deref().unwrap_or("url"),
    };
    secret("MZCHAT_DATABASE_URL", &db.url_secret_ref.name, key)
}

/// What every mzchatd process needs: origins, its database, logs and traces.
/// The root of this Homeserver's NATS subjects and stream names: its own, so Homeservers
/// sharing a NATS cluster never read each other's events (names are DNS labels, which
/// mzchatd's prefix rules accept).
pub fn bus_prefix(spec: &ValidSpec) -> String {
    format!("mzchat-{}-{}", spec.namespace, spec.name)
}

fn base(spec: &ValidSpec, service: Service) -> Vec<EnvVar> {
    let mut env = vec![
        value("MZCHAT_ORIGIN", spec.origin.to_string()),
        value("MZCHAT_ASSETS_ORIGIN", spec.assets_origin.to_string()),
        // the root filesystem is read-only; /tmp is an emptyDir
        value("MZCHAT_DATA_DIR", "/tmp/mzchat"),
        database_url(spec, service),
        value(
            "MZCHAT_LOG_FORMAT",
            match spec.spec.telemetry.log_format {
                LogFormat::Json => "json",
                LogFormat::Text => "text",
            },
        ),
    ];
    if spec.insecure_dev() {
        env.push(value("MZCHAT_INSECURE_DEV", "true"));
    }
    if let Some(endpoint) = &spec.spec.telemetry.otlp_endpoint {
        env.push(value("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.trim()));
    }
    env
}

/// The environment of `mzchatd migrate` for one database (all of them with SchemaPerService).
pub fn migrate(spec: &ValidSpec, service: Service) -> Vec<EnvVar> {
    let mut env = base(spec, service);
    env.push(value("MZCHAT_DATABASE_MAX_CONNECTIONS", "2"));
    env
}

/// The environment of `mzchatd <service>`.
pub fn service(spec: &ValidSpec, service: Service) -> Vec<EnvVar> {
    let s = &spec.spec;
    let mut env = base(spec, service);
    env.extend([
        // mzchatd listens on loopback by default; kubelet probes and peers come from outside
        value("MZCHAT_LISTEN", format!("0.0.0.0:{GRPC_PORT}")),
        value("MZCHAT_ADMIN_LISTEN", format!("0.0.0.0:{ADMIN_PORT}")),
        value(
            "MZCHAT_DATABASE_MAX_CONNECTIONS",
            s.database.max_connections.to_string(),
        ),
        value("MZCHAT_NATS_URL", s.nats.url.trim()),
        value("MZCHAT_BUS_PREFIX", bus_prefix(spec)),
        value("MZCHAT_STREAM_REPLICAS", s.nats.stream_replicas.to_string()),
        secret(
            "MZCHAT_INTERNAL_TOKEN",
            &spec.keys_secret,
            INTERNAL_TOKEN_KEY,
        ),
    ]);
    if s.nats.credentials_secret_ref.is_some() {
        // Not read by mzchatd yet (it has no NATS credentials flag); mounted for when it does.
        env.push(value("MZCHAT_NATS_CREDENTIALS", NATS_CREDS_FILE));
    }
    if let Some(limits) = rate_limits(spec) {
        env.push(value("MZCHAT_RATE_LIMITS", limits));
    }
    env.push(value(
        "MZCHAT_FORWARDED_FOR_HOPS",
        s.forwarded_for_hops.to_string(),
    ));
    for (name, list) in [
        ("MZCHAT_FEDERATION_ALLOW", &s.federation.allow),
        ("MZCHAT_FEDERATION_DENY", &s.federation.deny),
    ] {
        if !list.is_empty() {
            let joined: Vec<&str> = list.iter().map(|p| p.trim()).collect();
            env.push(value(name, joined.join(",")));
        }
    }
    env.extend(own(spec, service));
    env
}

/// `MZCHAT_RATE_LIMITS`: spec.rateLimits as `name=rule` joined by commas, sorted by name (so
/// the pod checksum is stable; `all` sorts before every limit name, and mzchatd applies the
/// settings in order, so `all=off` lifts the limits not named rather than clearing those that
/// are); none when the map is empty (mzchatd's defaults).
fn rate_limits(spec: &ValidSpec) -> Option<String> {
    let limits = &spec.spec.rate_limits;
    (!limits.is_empty()).then(|| {
        limits
            .iter()
            .map(|(name, rule)| format!("{name}={}", rule.trim()))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Settings only one service reads, and the peers it calls.
fn own(spec: &ValidSpec, service: Service) -> Vec<EnvVar> {
    let s = &spec.spec;
    let url = |name: &str, peer: Service| value(name, internal_url(spec, peer));
    match service {
        Service::Identity => {
            let mut env = vec![
                url("MZCHAT_GUILD_INTERNAL_URL", Service::Guild),
                url("MZCHAT_FEDERATION_INTERNAL_URL", Service::FederationSync),
                url("MZCHAT_MEDIA_INTERNAL_URL", Service::Media),
            ];
            let policy = match s.registration.policy {
                RegistrationPolicy::Open => "open",
                RegistrationPolicy::Token => "token",
                RegistrationPolicy::Closed => "closed",
            };
            env.push(value("MZCHAT_REGISTRATION", policy));
            if let Some(tokens) = &s.registration.tokens_secret_ref {
                env.push(secret(
                    "MZCHAT_REGISTRATION_TOKENS",
                    &tokens.name,
                    &tokens.key,
                ));
            }
            env
        }
        Service::Guild => vec![
            url("MZCHAT_IDENTITY_URL", Service::Identity),
            url("MZCHAT_MEDIA_INTERNAL_URL", Service::Media),
        ],
        Service::FederationSync => vec![url("MZCHAT_IDENTITY_INTERNAL_URL", Service::Identity)],
        Service::PushRelay => {
            let mut env = vec![
                url("MZCHAT_IDENTITY_URL", Service::Identity),
                url("MZCHAT_GUILD_INTERNAL_URL", Service::Guild),
                url("MZCHAT_FEDERATION_INTERNAL_URL", Service::FederationSync),
            ];
            if s.push
                .as_ref()
                .is_some_and(|p| p.fcm_credentials_secret_ref.is_some())
            {
                env.push(value("MZCHAT_FCM_CREDENTIALS", FCM_FILE));
            }
            env
        }
        Service::Media => {
            let store = &s.object_store;
            let mut env = vec![
                url("MZCHAT_IDENTITY_URL", Service::Identity),
                value("MZCHAT_ASSETS_LISTEN", format!("0.0.0.0:{ASSETS_PORT}")),
                value("MZCHAT_MEDIA_STORE", "s3"),
                value("MZCHAT_S3_BUCKET", store.bucket.clone()),
                value("MZCHAT_S3_REGION", store.region.clone()),
                value("MZCHAT_S3_PATH_STYLE", store.path_style.to_string()),
            ];
            if let Some(endpoint) = &store.endpoint {
                env.push(value("MZCHAT_S3_ENDPOINT", endpoint.trim()));
            }
            if let Some(creds) = &store.credentials_secret_ref {
                env.push(secret(
                    "MZCHAT_S3_ACCESS_KEY_ID",
                    &creds.name,
                    S3_ACCESS_KEY_ID_KEY,
                ));
                env.push(secret(
                    "MZCHAT_S3_SECRET_ACCESS_KEY",
                    &creds.name,
                    S3_SECRET_ACCESS_KEY_KEY,
                ));
            }
            env
        }
    }
}
