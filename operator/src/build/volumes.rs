//! Volumes of an mzchatd pod: a writable /tmp (the root filesystem is read-only) and the
//! Secrets mzchatd reads as files.

use k8s_openapi::api::core::v1::{
    EmptyDirVolumeSource, KeyToPath, SecretVolumeSource, Volume, VolumeMount,
};

use crate::service::Service;
use crate::validate::ValidSpec;

const NATS_DIR: &str = "/var/run/secrets/mzchat/nats";
pub const NATS_CREDS_FILE: &str = "/var/run/secrets/mzchat/nats/nats.creds";
const FCM_DIR: &str = "/var/run/secrets/mzchat/fcm";
pub const FCM_FILE: &str = "/var/run/secrets/mzchat/fcm/service-account.json";

/// Readable by the (non-root) container user only through its group.
const SECRET_FILE_MODE: i32 = 0o440;

fn secret_volume(name: &str, secret: &str, key: &str, file: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            items: Some(vec![KeyToPath {
                key: key.to_owned(),
                path: file.to_owned(),
                mode: None,
            }]),
            default_mode: Some(SECRET_FILE_MODE),
            optional: Some(false),
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(name != "tmp"),
        ..VolumeMount::default()
    }
}

/// Just /tmp (the migration Job's pods).
pub fn tmp() -> (Vec<Volume>, Vec<VolumeMount>) {
    let volume = Volume {
        name: "tmp".to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    (vec![volume], vec![mount("tmp", "/tmp")])
}

/// /tmp and the Secrets `mzchatd <service>` reads as files.
pub fn for_service(spec: &ValidSpec, service: Service) -> (Vec<Volume>, Vec<VolumeMount>) {
    let (mut volumes, mut mounts) = tmp();
    if let Some(creds) = &spec.spec.nats.credentials_secret_ref {
        volumes.push(secret_volume(
            "nats-credentials",
            &creds.name,
            &creds.key,
            "nats.creds",
        ));
        mounts.push(mount("nats-credentials", NATS_DIR));
    }
    let fcm = spec
        .spec
        .push
        .as_ref()
        .and_then(|p| p.fcm_credentials_secret_ref.as_ref());
    if let (Service::PushRelay, Some(fcm)) = (service, fcm) {
        volumes.push(secret_volume(
            "fcm-credentials",
            &fcm.name,
            &fcm.key,
            "service-account.json",
        ));
        mounts.push(mount("fcm-credentials", FCM_DIR));
    }
    (volumes, mounts)
}
