//! The signing rules of PROTOCOL.md section 2, shared by clients and servers.
//!
//! A signed statement's signature covers `"mzchat/v1/" + TYPE + 0x00 + body`, where body is the
//! statement's protobuf encoding exactly as the signer produced it. Verification checks the
//! signature over the received bytes first and only then decodes them, so no canonical encoding
//! is ever needed.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use prost::Message;

use crate::common::SignedStatement;

/// Statement types, the TYPE of the signing input.
pub const DEVICE_CERTIFICATE: &str = "device-certificate";
pub const LOGIN_PROOF: &str = "login-proof";
pub const DEVICE_REVOCATION: &str = "device-revocation";
pub const PUSH_DELEGATION_TOKEN: &str = "push-delegation-token";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatementError {
    #[error("signature must be 64 bytes")]
    MalformedSignature,
    #[error("signature does not verify")]
    BadSignature,
    #[error("statement body is not a valid {0}")]
    MalformedBody(&'static str),
    #[error("statement body is over {MAX_STATEMENT_BYTES} bytes")]
    TooLarge,
}

/// Largest statement body verified: every statement type is a few ids, keys and timestamps
/// (well under 1 KiB), and verified statements are stored and passed on as received.
pub const MAX_STATEMENT_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserIdError {
    #[error("user id must be 43 characters of unpadded base64url")]
    Encoding,
    #[error("user id is not a valid Ed25519 public key")]
    NotAKey,
}

/// The bytes a statement signature covers.
pub fn signing_input(statement_type: &str, body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(10 + statement_type.len() + 1 + body.len());
    input.extend_from_slice(b"mzchat/v1/");
    input.extend_from_slice(statement_type.as_bytes());
    input.push(0);
    input.extend_from_slice(body);
    input
}

/// Encodes and signs a statement.
pub fn sign<M: Message>(key: &SigningKey, statement_type: &str, statement: &M) -> SignedStatement {
    let body = statement.encode_to_vec();
    let signature = key.sign(&signing_input(statement_type, &body));
    SignedStatement {
        body,
        signature: signature.to_bytes().to_vec(),
    }
}

/// Checks the signature over the received bytes, then decodes the body.
pub fn verify<M: Message + Default>(
    key: &VerifyingKey,
    statement_type: &'static str,
    statement: &SignedStatement,
) -> Result<M, StatementError> {
    if statement.body.len() > MAX_STATEMENT_BYTES {
        return Err(StatementError::TooLarge);
    }
    let signature = Signature::from_slice(&statement.signature)
        .map_err(|_| StatementError::MalformedSignature)?;
    key.verify_strict(&signing_input(statement_type, &statement.body), &signature)
        .map_err(|_| StatementError::BadSignature)?;
    M::decode(statement.body.as_slice()).map_err(|_| StatementError::MalformedBody(statement_type))
}

/// The bytes a migration signature covers: `new_homeserver + "|" + migration_timestamp`.
pub fn migration_signing_input(new_homeserver: &str, migration_timestamp: i64) -> Vec<u8> {
    format!("{new_homeserver}|{migration_timestamp}").into_bytes()
}

/// A user id is the root public key as unpadded base64url.
pub fn encode_user_id(key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Parses a user id into the root public key it names.
pub fn decode_user_id(user_id: &str) -> Result<VerifyingKey, UserIdError> {
    if user_id.len() != 43 {
        return Err(UserIdError::Encoding);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(user_id)
        .map_err(|_| UserIdError::Encoding)?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| UserIdError::Encoding)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| UserIdError::NotAKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::DeviceRevocation;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_statement_verifies_under_its_signer_and_decodes() {
        let k = key(1);
        let statement = DeviceRevocation {
            user_id: "u".into(),
            device_id: "d".into(),
            revoked_at: None,
        };
        let signed = sign(&k, DEVICE_REVOCATION, &statement);
        let decoded: DeviceRevocation =
            verify(&k.verifying_key(), DEVICE_REVOCATION, &signed).expect("verifies");
        assert_eq!(decoded, statement);
    }

    #[test]
    fn a_statement_is_refused_under_another_key_type_or_body() {
        let k = key(1);
        let signed = sign(&k, DEVICE_REVOCATION, &DeviceRevocation::default());
        let other = key(2).verifying_key();
        assert_eq!(
            verify::<DeviceRevocation>(&other, DEVICE_REVOCATION, &signed),
            Err(StatementError::BadSignature)
        );
        assert_eq!(
            verify::<DeviceRevocation>(&k.verifying_key(), LOGIN_PROOF, &signed),
            Err(StatementError::BadSignature)
        );
        let mut tampered = signed.clone();
        tampered.body.push(0);
        assert_eq!(
            verify::<DeviceRevocation>(&k.verifying_key(), DEVICE_REVOCATION, &tampered),
            Err(StatementError::BadSignature)
        );
        tampered.signature.truncate(10);
        assert_eq!(
            verify::<DeviceRevocation>(&k.verifying_key(), DEVICE_REVOCATION, &tampered),
            Err(StatementError::MalformedSignature)
        );
        // Validly signed but huge: refused before any work.
        let huge = DeviceRevocation {
            device_id: "d".repeat(MAX_STATEMENT_BYTES),
            ..Default::default()
        };
        let signed = sign(&k, DEVICE_REVOCATION, &huge);
        assert_eq!(
            verify::<DeviceRevocation>(&k.verifying_key(), DEVICE_REVOCATION, &signed),
            Err(StatementError::TooLarge)
        );
    }

    #[test]
    fn user_ids_round_trip_and_reject_garbage() {
        let k = key(7).verifying_key();
        let id = encode_user_id(&k);
        assert_eq!(id.len(), 43);
        assert_eq!(decode_user_id(&id), Ok(k));
        assert_eq!(decode_user_id("short"), Err(UserIdError::Encoding));
        assert_eq!(decode_user_id(&"!".repeat(43)), Err(UserIdError::Encoding));
    }
}
