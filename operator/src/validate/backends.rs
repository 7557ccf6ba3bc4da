//! PostgreSQL, NATS, the object store and the credentials they need.

use crate::crd::{DatabaseLayout, HomeserverSpec};

use super::urls::parse_endpoint;
use super::{Egress, Errors, names};

/// Checks the backends; the ports the services connect to, when the URLs parse.
pub(super) fn check(spec: &HomeserverSpec, errors: &mut Errors) -> Option<Egress> {
    database(spec, errors);
    let nats = nats(spec, errors);
    let object_store = object_store(spec, errors);
    if let Some(keys) = &spec.keys {
        errors.secret_name("spec.keys.secretName", &keys.secret_name);
    }
    let otlp = match &spec.telemetry.otlp_endpoint {
        // reported with the other policies when it does not parse
        Some(endpoint) => Some(
            parse_endpoint(endpoint, &[("http", 80), ("https", 443)])
                .ok()?
                .port,
        ),
        None => None,
    };
    Some(Egress {
        nats: nats?,
        object_store: object_store?,
        otlp,
    })
}

fn database(spec: &HomeserverSpec, errors: &mut Errors) {
    let db = &spec.database;
    errors.secret_name("spec.database.urlSecretRef.name", &db.url_secret_ref.name);
    match (db.layout, &db.url_secret_ref.key) {
        (DatabaseLayout::SchemaPerService, None) => errors.add(
            "spec.database.urlSecretRef.key",
            "is required with layout SchemaPerService: the key of the Secret holding the PostgreSQL URL",
        ),
        (DatabaseLayout::SchemaPerService, Some(key)) => {
            errors.secret_key("spec.database.urlSecretRef.key", key);
        }
        // The Secret's keys are the service names; `key` is documented as ignored.
        (DatabaseLayout::DatabasePerService, _) => {}
    }
    if !(1..=1000).contains(&db.max_connections) {
        errors.add(
            "spec.database.maxConnections",
            format!(
                "is {}; it is each pod's pool size per service, between 1 and 1000",
                db.max_connections
            ),
        );
    }
}

fn nats(spec: &HomeserverSpec, errors: &mut Errors) -> Option<Vec<u16>> {
    let nats = &spec.nats;
    let schemes = [("nats", 4222), ("tls", 4222), ("ws", 80), ("wss", 443)];
    // mzchatd takes the servers of one cluster separated by commas.
    let mut ports = Vec::new();
    let mut valid = true;
    for url in nats.url.split(',').map(str::trim) {
        match parse_endpoint(url, &schemes) {
            Ok(endpoint) if !ports.contains(&endpoint.port) => ports.push(endpoint.port),
            Ok(_) => {}
            Err(m) => {
                errors.add("spec.nats.url", m);
                valid = false;
            }
        }
    }
    let port = valid.then_some(ports);
    if let Some(creds) = &nats.credentials_secret_ref {
        errors.secret_name("spec.nats.credentialsSecretRef.name", &creds.name);
        errors.secret_key("spec.nats.credentialsSecretRef.key", &creds.key);
    }
    if !(1..=5).contains(&nats.stream_replicas) {
        errors.add(
            "spec.nats.streamReplicas",
            format!(
                "is {}; JetStream keeps 1 to 5 replicas of a stream (1 for a single server)",
                nats.stream_replicas
            ),
        );
    }
    port
}

fn object_store(spec: &HomeserverSpec, errors: &mut Errors) -> Option<u16> {
    let store = &spec.object_store;
    if !names::is_bucket(&store.bucket) {
        errors.add(
            "spec.objectStore.bucket",
            format!("{:?} is not a valid bucket name: 3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit", store.bucket),
        );
    }
    if !names::is_region(&store.region) {
        errors.add(
            "spec.objectStore.region",
            format!(
                "{:?} is not a region name (letters, digits, '-' and '_')",
                store.region
            ),
        );
    }
    match &store.credentials_secret_ref {
        Some(creds) => errors.secret_name("spec.objectStore.credentialsSecretRef.name", &creds.name),
        // mzchatd's media service reads static keys only (MZCHAT_S3_ACCESS_KEY_ID/SECRET).
        None => errors.add(
            "spec.objectStore.credentialsSecretRef",
            "is required: mzchatd needs static S3 keys (accessKeyId and secretAccessKey) and cannot use ambient credentials (IAM roles, pod identity) yet",
        ),
    }
    match &store.endpoint {
        None => Some(443),
        Some(endpoint) => match parse_endpoint(endpoint, &[("https", 443), ("http", 80)]) {
            Ok(e) => Some(e.port),
            Err(m) => {
                errors.add("spec.objectStore.endpoint", m);
                None
            }
        },
    }
}
