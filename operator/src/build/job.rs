//! The migration Job: `mzchatd migrate` of spec.version, which the operator runs (and waits
//! for) before rolling the Deployments to that version. Its name carries the version, so each
//! version migrates exactly once and a failed Job stays visible until the version changes.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::crd::DatabaseLayout;
use crate::service::Service;
use crate::validate::ValidSpec;

use super::deployment::pull_policy;
use super::meta::{labels, object_meta};
use super::network_policy::MIGRATE_COMPONENT;
use super::pod::{
    CONFIG_CHECKSUM_ANNOTATION, config_checksum, container_security, image_pull_secrets,
    pod_security,
};
use super::{env, volumes};

/// Tries before the Job fails (and the Degraded condition says so).
const BACKOFF_LIMIT: i32 = 3;
/// Kept a day after finishing, for `kubectl logs`.
const TTL_SECONDS_AFTER_FINISHED: i32 = 86_400;
const ACTIVE_DEADLINE_SECONDS: i64 = 3_600;

/// `<name>-migrate-<version>`; a hash of the version instead when that would exceed 63
/// characters (the job-name label's limit) or the version is not a DNS name.
pub fn job_name(spec: &ValidSpec) -> String {
    let version = &spec.spec.version;
    let readable = format!("{}-{MIGRATE_COMPONENT}-{version}", spec.name);
    let dns_safe = version
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if readable.len() <= 63 && dns_safe {
        return readable;
    }
    let hash: String = Sha256::digest(version.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let prefix = format!("{}-{MIGRATE_COMPONENT}-", spec.name);
    format!("{prefix}{}", &hash[..(63 - prefix.len()).min(hash.len())])
}

pub fn migration_job(spec: &ValidSpec) -> Job {
    let (volumes, mounts) = volumes::tmp();
    let container = |name: String, service: Service, args: Vec<String>| Container {
        name,
        image: Some(spec.image.clone()),
        image_pull_policy: Some(pull_policy(spec.spec.image.pull_policy).to_owned()),
        args: Some(args),
        env: Some(env::migrate(spec, service)),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts.clone()),
        ..Container::default()
    };
    // One database: `mzchatd migrate` migrates every service's schema in it. A database per
    // service: one `migrate --service` per database, one after the other (init containers).
    let mut runs: Vec<Container> = match spec.spec.database.layout {
        DatabaseLayout::SchemaPerService => vec![container(
            "migrate".into(),
            Service::Identity,
            vec!["migrate".into()],
        )],
        DatabaseLayout::DatabasePerService => Service::ALL
            .iter()
            .map(|&s| {
                let args = vec!["migrate".into(), "--service".into(), s.name().into()];
                container(format!("migrate-{}", s.name()), s, args)
            })
            .collect(),
    };
    let last = runs.pop().into_iter().collect::<Vec<_>>();
    let all: Vec<&Container> = runs.iter().chain(last.iter()).collect();
    // Applied once per version and never changed: Secret versions do not matter here.
    let checksum = config_checksum(&all, &volumes, &BTreeMap::new());
    let component = Some(MIGRATE_COMPONENT);
    Job {
        metadata: object_meta(spec, job_name(spec), component),
        spec: Some(JobSpec {
            backoff_limit: Some(BACKOFF_LIMIT),
            ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
            active_deadline_seconds: Some(ACTIVE_DEADLINE_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(spec, component)),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_CHECKSUM_ANNOTATION.to_owned(),
                        checksum,
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    init_containers: (!runs.is_empty()).then_some(runs),
                    containers: last,
                    restart_policy: Some("Never".to_owned()),
                    volumes: Some(volumes),
                    security_context: Some(pod_security()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    image_pull_secrets: image_pull_secrets(spec),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}
