//! Signing the statements a login needs.

use mzchat_proto::{
    common::{DeviceCertificate, DeviceRevocation, LoginProof, SignedStatement},
    signing,
};
use prost_types::Timestamp;

use crate::keys::LocalIdentity;

/// Certificates this client issues live 90 days.
pub const CERTIFICATE_LIFETIME_SECS: i64 = 90 * 86_400;

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// A certificate for the local device, signed by the root key.
pub fn device_certificate(identity: &LocalIdentity, now: i64) -> SignedStatement {
    let cert = DeviceCertificate {
        user_id: identity.user_id(),
        device_id: identity.device_id.clone(),
        device_public_key: identity.device.verifying_key().to_bytes().to_vec(),
        home_server: identity.home_server.clone(),
        issued_at: ts(now),
        expires_at: ts(now + CERTIFICATE_LIFETIME_SECS),
    };
    signing::sign(&identity.root, signing::DEVICE_CERTIFICATE, &cert)
}

/// A one-time login proof for `audience`, signed by the device key.
pub fn login_proof(
    identity: &LocalIdentity,
    audience: &str,
    now: i64,
) -> Result<SignedStatement, getrandom::Error> {
    let mut nonce = [0u8; 16];
    getrandom::getrandom(&mut nonce)?;
    let proof = LoginProof {
        audience: audience.to_owned(),
        device_id: identity.device_id.clone(),
        timestamp: ts(now),
        nonce: nonce.to_vec(),
    };
    Ok(signing::sign(
        &identity.device,
        signing::LOGIN_PROOF,
        &proof,
    ))
}

/// A revocation of `device_id`, signed by the root key.
pub fn device_revocation(identity: &LocalIdentity, device_id: &str, now: i64) -> SignedStatement {
    let revocation = DeviceRevocation {
        user_id: identity.user_id(),
        device_id: device_id.to_owned(),
        revoked_at: ts(now),
    };
    signing::sign(&identity.root, signing::DEVICE_REVOCATION, &revocation)
}

/// A migration proof moving the user's home to `new_homeserver` (PROTOCOL.md section 8), for
/// the old servers in `targets` to learn of it.
pub fn migration_proof(
    identity: &LocalIdentity,
    new_homeserver: &str,
    targets: &[String],
    now: i64,
) -> mzchat_proto::common::MigrationProof {
    use ed25519_dalek::Signer;
    let input = signing::migration_signing_input(new_homeserver, now);
    mzchat_proto::common::MigrationProof {
        new_homeserver: new_homeserver.to_owned(),
        migration_timestamp: now,
        migration_signature: identity.root.sign(&input).to_bytes().to_vec(),
        migration_targets: targets.to_vec(),
    }
}
