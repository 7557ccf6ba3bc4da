//! Pod settings shared by the services' Deployments and the migration Job: hardening, pull
//! secrets and the configuration checksum that rolls pods when their configuration changes.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, LocalObjectReference, PodSecurityContext, SeccompProfile,
    SecurityContext, Volume,
};
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
pub fn config_checksum(containers: &[&Container], volumes: &[Volume]) -> String {
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
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
