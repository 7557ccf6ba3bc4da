//! Device certificates, login proofs and revocations (PROTOCOL.md section 2). Each check is
//! pure: the caller supplies the time and this server's origin. Replay and revocation lookups
//! need storage and live in the application layer.

use ed25519_dalek::VerifyingKey;
use mzchat_platform::Origin;
use mzchat_proto::{
    common::{DeviceCertificate, DeviceRevocation, LoginProof, MigrationProof, SignedStatement},
    signing::{self, StatementError},
};

use super::{IdentityError, Result, invalid, unauthenticated};

/// Allowed clock difference between client and server.
pub const CLOCK_SKEW_SECS: i64 = 5 * 60;
pub const MAX_CERTIFICATE_LIFETIME_SECS: i64 = 365 * 86_400;
pub const NONCE_LEN: usize = 16;

/// A certificate whose signature and validity window checked out.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    pub user_id: String,
    pub device_id: String,
    pub device_key: VerifyingKey,
    pub home_server: Origin,
    pub issued_at: i64,
    pub expires_at: i64,
    pub statement: SignedStatement,
}

/// Parses a user id, answering INVALID_ARGUMENT for garbage.
pub fn parse_user_id(user_id: &str) -> Result<VerifyingKey> {
    signing::decode_user_id(user_id).map_err(|e| invalid(format!("user_id: {e}")))
}

pub fn validate_device_id(device_id: &str) -> Result<()> {
    let ok = (1..=64).contains(&device_id.len())
        && device_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "device_id must be 1-64 characters of [A-Za-z0-9_-]",
        ))
    }
}

fn statement_error(what: &str, err: StatementError) -> IdentityError {
    match err {
        StatementError::BadSignature => {
            unauthenticated(format!("{what} signature does not verify"))
        }
        other => invalid(format!("{what}: {other}")),
    }
}

/// Latest timestamp accepted from the network (9999-12-31): keeps every later sum and
/// difference far from overflow.
const MAX_TIMESTAMP: i64 = 253_402_300_799;

fn seconds(ts: Option<prost_types::Timestamp>, what: &str) -> Result<i64> {
    let seconds = ts
        .map(|t| t.seconds)
        .ok_or_else(|| invalid(format!("{what} is required")))?;
    if (0..=MAX_TIMESTAMP).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(invalid(format!("{what} is out of range")))
    }
}

/// Checks a device certificate presented for `user_id` at time `now`.
pub fn verify_certificate(
    user_id: &str,
    statement: Option<&SignedStatement>,
    now: i64,
    allow_http: bool,
) -> Result<VerifiedCertificate> {
    let root = parse_user_id(user_id)?;
    let statement = statement.ok_or_else(|| invalid("certificate is required"))?;
    let cert: DeviceCertificate = signing::verify(&root, signing::DEVICE_CERTIFICATE, statement)
        .map_err(|e| statement_error("device certificate", e))?;
    if cert.user_id != user_id {
        return Err(invalid("device certificate names another user"));
    }
    validate_device_id(&cert.device_id)?;
    let key_bytes: [u8; 32] = cert
        .device_public_key
        .as_slice()
        .try_into()
        .map_err(|_| invalid("device_public_key must be 32 bytes"))?;
    let device_key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| invalid("device_public_key is not a valid Ed25519 key"))?;
    let home_server = Origin::parse(&cert.home_server, allow_http)
        .map_err(|e| invalid(format!("certificate home_server: {e}")))?;
    let issued_at = seconds(cert.issued_at, "certificate issued_at")?;
    let expires_at = seconds(cert.expires_at, "certificate expires_at")?;
    if expires_at <= issued_at || expires_at - issued_at > MAX_CERTIFICATE_LIFETIME_SECS {
        return Err(invalid(
            "certificate must expire after it is issued and within 365 days",
        ));
    }
    if issued_at - CLOCK_SKEW_SECS > now {
        return Err(unauthenticated("device certificate is not valid yet"));
    }
    if now >= expires_at {
        return Err(unauthenticated("device certificate has expired"));
    }
    Ok(VerifiedCertificate {
        user_id: cert.user_id,
        device_id: cert.device_id,
        device_key,
        home_server,
        issued_at,
        expires_at,
        statement: statement.clone(),
    })
}

/// Checks a login proof against its certificate; returns the nonce for the replay check.
pub fn verify_proof(
    cert: &VerifiedCertificate,
    statement: Option<&SignedStatement>,
    audience: &Origin,
    now: i64,
) -> Result<[u8; NONCE_LEN]> {
    let statement = statement.ok_or_else(|| invalid("proof is required"))?;
    let proof: LoginProof = signing::verify(&cert.device_key, signing::LOGIN_PROOF, statement)
        .map_err(|e| statement_error("login proof", e))?;
    if proof.device_id != cert.device_id {
        return Err(invalid(
            "login proof names another device than the certificate",
        ));
    }
    if proof.audience != audience.as_str() {
        return Err(unauthenticated(format!(
            "login proof is for {}, not for this server ({audience})",
            proof.audience
        )));
    }
    let timestamp = seconds(proof.timestamp, "proof timestamp")?;
    if (now - timestamp).abs() > CLOCK_SKEW_SECS {
        return Err(unauthenticated(
            "login proof timestamp is more than 5 minutes from the server's clock",
        ));
    }
    proof
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| invalid("login proof nonce must be 16 bytes"))
}

/// A revocation whose signature checked out.
#[derive(Debug, Clone)]
pub struct VerifiedRevocation {
    pub user_id: String,
    pub device_id: String,
    pub revoked_at: i64,
    pub statement: SignedStatement,
}

pub fn verify_revocation(
    user_id: &str,
    statement: Option<&SignedStatement>,
    now: i64,
) -> Result<VerifiedRevocation> {
    let root = parse_user_id(user_id)?;
    let statement = statement.ok_or_else(|| invalid("revocation is required"))?;
    let revocation: DeviceRevocation =
        signing::verify(&root, signing::DEVICE_REVOCATION, statement)
            .map_err(|e| statement_error("device revocation", e))?;
    if revocation.user_id != user_id {
        return Err(invalid("revocation names another user"));
    }
    validate_device_id(&revocation.device_id)?;
    let revoked_at = seconds(revocation.revoked_at, "revoked_at")?;
    if revoked_at - CLOCK_SKEW_SECS > now {
        return Err(invalid("revoked_at is in the future"));
    }
    Ok(VerifiedRevocation {
        user_id: revocation.user_id,
        device_id: revocation.device_id,
        revoked_at,
        statement: statement.clone(),
    })
}

/// Homeserver migrations a client may announce in one login.
pub const MAX_MIGRATION_TARGETS: usize = 16;

/// A migration proof that moves the user to this server (PROTOCOL.md section 8).
#[derive(Debug, Clone)]
pub struct VerifiedMigration {
    pub timestamp: i64,
    pub signature: Vec<u8>,
    /// Old servers to tell, deduplicated, without this one.
    pub targets: Vec<Origin>,
}

pub fn verify_migration(
    cert: &VerifiedCertificate,
    proof: &MigrationProof,
    me: &Origin,
    now: i64,
    allow_http: bool,
) -> Result<VerifiedMigration> {
    if proof.new_homeserver != me.as_str() {
        return Err(invalid(format!(
            "migration proof moves the user to {}, not to this server ({me})",
            proof.new_homeserver
        )));
    }
    if now.abs_diff(proof.migration_timestamp) > CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(unauthenticated(
            "migration timestamp is more than 5 minutes from the server's clock; sign a new proof",
        ));
    }
    let root = parse_user_id(&cert.user_id)?;
    let signature = ed25519_dalek::Signature::from_slice(&proof.migration_signature)
        .map_err(|_| invalid("migration_signature must be 64 bytes"))?;
    let input = signing::migration_signing_input(&proof.new_homeserver, proof.migration_timestamp);
    root.verify_strict(&input, &signature).map_err(|_| {
        unauthenticated("migration signature does not verify under the user's root key")
    })?;
    if proof.migration_targets.len() > MAX_MIGRATION_TARGETS {
        return Err(invalid(format!(
            "at most {MAX_MIGRATION_TARGETS} migration targets"
        )));
    }
    let mut targets: Vec<Origin> = Vec::new();
    for target in &proof.migration_targets {
        let origin = Origin::parse(target, allow_http)
            .map_err(|e| invalid(format!("migration target {target:?}: {e}")))?;
        if origin != *me && !targets.contains(&origin) {
            targets.push(origin);
        }
    }
    Ok(VerifiedMigration {
        timestamp: proof.migration_timestamp,
        signature: proof.migration_signature.clone(),
        targets,
    })
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
