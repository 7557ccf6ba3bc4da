//! Pod settings shared by the services' Deployments and the migration Job: hardening, pull
//! secrets and the configuration checksum that rolls pods when their configuration changes.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, LocalObjectReference, PodSecurityContext, SeccompProfile,
    SecurityContext, Volume,
};
use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::validate::ValidSpec;

/// The pod annotation whose change rolls a Deployment.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "mzchat.io/config-checksum";
/// The image's non-root user (distroless `nonroot`).
const USER: i64 = 65532;

pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(USER),
        run_as_group: Some(USER),
        // lets the non-root user read the mounted Secret files (mode 0440)
        fs_group: Some(USER),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

pub fn container_security() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

pub fn image_pull_secrets(spec: &ValidSpec) -> Option<Vec<LocalObjectReference>> {
    let secrets = &spec.spec.image.pull_secrets;
    (!secrets.is_empty()).then(|| {
        secrets
            .iter()
            .map(|name| LocalObjectReference { name: name.clone() })
            .collect()
    })
}

/// sha256 of everything a pod is configured with: image, arguments, environment (Secret
/// references by name and key) and volumes. The contents of Secrets are not included: the
/// operator never reads them.
pub fn config_checksum(
    containers: &[&Container],
    volumes: &[Volume],
    secret_versions: &BTreeMap<String, String>,
) -> String {
    let mut hash = Sha256::new();
    for container in containers {
        let config = (
            &container.image,
            &container.args,
            &container.env,
            &container.volume_mounts,
        );
        // serializing plain data into memory cannot fail
        hash.update(serde_json::to_vec(&config).unwrap_or_default());
    }
    hash.update(serde_json::to_vec(volumes).unwrap_or_default());
    for name in secrets_of(containers, volumes) {
        let version = secret_versions.get(&name).map(String::as_str);
        hash.update(serde_json::to_vec(&(name.as_str(), version)).unwrap_or_default());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The Secrets these containers read, from their environment and volumes.
pub fn secrets_of(containers: &[&Container], volumes: &[Volume]) -> BTreeSet<String> {
    let from_env = containers
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
        .map(|r| r.name.clone());
    let from_volumes = volumes
        .iter()
        .filter_map(|v| v.secret.as_ref()?.secret_name.clone());
    from_env.chain(from_volumes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{Observed, desired, secrets_used};
    use crate::fixtures::valid;

    #[test]
    fn a_new_version_of_a_secret_the_pods_read_rolls_them_and_no_other_does() {
        let spec = valid("valid-production", "{}");
        let sums = |versions: &[(&str, &str)]| -> Vec<String> {
            let observed = Observed {
                secret_versions: versions
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                ..Observed::default()
            };
            desired(&spec, &observed)
                .deployments
                .iter()
                .map(|d| {
                    let meta = d.spec.as_ref().and_then(|s| s.template.metadata.as_ref());
                    meta.and_then(|m| m.annotations.as_ref())
                        .and_then(|a| a.get(CONFIG_CHECKSUM_ANNOTATION))
                        .cloned()
                        .expect("checksum")
                })
                .collect()
        };
        assert!(secrets_used(&desired(&spec, &Observed::default())).contains("chat-db"));
        let base = sums(&[("chat-db", "1")]);
        let rotated = sums(&[("chat-db", "2")]);
        assert!(
            base.iter().zip(&rotated).all(|(a, b)| a != b),
            "every service reads the database Secret"
        );
        assert_eq!(base, sums(&[("chat-db", "1"), ("unrelated", "9")]));
    }
}
