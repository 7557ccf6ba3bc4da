//! Signed statements (PROTOCOL.md section 2): `signing::verify` and identity's
//! verify_certificate, verify_proof and verify_revocation.
//!
//! Input: a byte choosing the statement type (certificate, revocation, proof, push delegation:
//! its value mod 4), then a body. Properties:
//! - nothing panics;
//! - the whole input decoded as a received `SignedStatement` is accepted only if the type's
//!   fixed key made exactly its signature (no forgery, no malleated signature);
//! - the body in a statement the fixed key did sign: `signing::verify` refuses it as too large
//!   over `MAX_STATEMENT_BYTES`, else answers exactly what decoding the body answers, refuses it under another statement type and after one flipped
//!   bit, and whatever identity accepts satisfies the rules it promises (user, device id,
//!   validity window, clock skew, audience, nonce).
#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;
use mzchat_fuzz::{
    DEVICE_ID, ME, NOW, assert_signed_by, certificate, device_key, is_valid_device_id, me,
    root_key, sign_raw, user_id,
};
use mzchat_identity::domain::login::{
    CLOCK_SKEW_SECS, MAX_CERTIFICATE_LIFETIME_SECS, verify_certificate, verify_proof,
    verify_revocation,
};
use mzchat_platform::Origin;
use mzchat_proto::{
    common::{
        DeviceCertificate, DeviceRevocation, LoginProof, PushDelegationToken, SignedStatement,
    },
    signing::{self, StatementError},
};
use prost::Message;

/// The statement types and the fixed key that signs each.
fn signer(selector: u8) -> (SigningKey, &'static str) {
    match selector % 4 {
        0 => (root_key(), signing::DEVICE_CERTIFICATE),
        1 => (root_key(), signing::DEVICE_REVOCATION),
        2 => (device_key(), signing::LOGIN_PROOF),
        _ => (root_key(), signing::PUSH_DELEGATION_TOKEN),
    }
}

// Ed25519 is the cost of every execution, so each input checks one statement type, chosen by
// its first byte, instead of all four.
fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (key, ty) = signer(selector);
    if let Ok(received) = SignedStatement::decode(data) {
        check_received(&key, ty, &received);
    }
    check_signed_body(&key, ty, body);
});

/// A statement off the wire: whatever is accepted was signed by the key it was checked under.
fn check_received(key: &SigningKey, ty: &'static str, statement: &SignedStatement) {
    if verify_any(key, ty, statement).is_ok() {
        assert_signed_by(key, ty, statement);
    }
    check_identity(ty, statement);
}

/// The fuzz bytes as the body of a statement the fixed key really signed.
fn check_signed_body(key: &SigningKey, ty: &'static str, body: &[u8]) {
    let statement = sign_raw(key, ty, body);
    let verified = verify_any(key, ty, &statement);
    if body.len() > signing::MAX_STATEMENT_BYTES {
        // Refused before any signature work, whatever it holds.
        return assert_eq!(verified, Err(StatementError::TooLarge));
    }
    assert_eq!(verified, decode_any(ty, body));
    // The statement type is part of what is signed.
    let other = if ty == signing::LOGIN_PROOF {
        signing::DEVICE_CERTIFICATE
    } else {
        signing::LOGIN_PROOF
    };
    assert_eq!(
        verify_any(key, other, &statement),
        Err(StatementError::BadSignature)
    );
    // So is every bit of the body.
    if let Some(&first) = body.first() {
        let mut tampered = statement.clone();
        let at = usize::from(first) % body.len();
        tampered.body[at] ^= 1 << (first % 8);
        assert_eq!(
            verify_any(key, ty, &tampered),
            Err(StatementError::BadSignature)
        );
    }
    check_identity(ty, &statement);
}

/// `signing::verify` for the message type of `ty`, reduced to success or its error.
fn verify_any(
    key: &SigningKey,
    ty: &'static str,
    s: &SignedStatement,
) -> Result<(), StatementError> {
    let key = key.verifying_key();
    match ty {
        signing::DEVICE_CERTIFICATE => signing::verify::<DeviceCertificate>(&key, ty, s).map(drop),
        signing::DEVICE_REVOCATION => signing::verify::<DeviceRevocation>(&key, ty, s).map(drop),
        signing::LOGIN_PROOF => signing::verify::<LoginProof>(&key, ty, s).map(drop),
        _ => signing::verify::<PushDelegationToken>(&key, ty, s).map(drop),
    }
}

fn decode_any(ty: &'static str, body: &[u8]) -> Result<(), StatementError> {
    let decoded = match ty {
        signing::DEVICE_CERTIFICATE => DeviceCertificate::decode(body).map(drop),
        signing::DEVICE_REVOCATION => DeviceRevocation::decode(body).map(drop),
        signing::LOGIN_PROOF => LoginProof::decode(body).map(drop),
        _ => PushDelegationToken::decode(body).map(drop),
    };
    decoded.map_err(|_| StatementError::MalformedBody(ty))
}

/// Identity's check for statements of type `ty`; an acceptance must satisfy what it documents.
/// Identity's check for statements of type `ty`; an acceptance must satisfy what it documents.
fn check_identity(ty: &'static str, statement: &SignedStatement) {
    let user = user_id();
    match ty {
        signing::DEVICE_CERTIFICATE => check_certificate(&user, statement),
        signing::DEVICE_REVOCATION => check_revocation(&user, statement),
        signing::LOGIN_PROOF => check_proof(statement),
        _ => {}
    }
}

fn check_certificate(user: &str, statement: &SignedStatement) {
    for allow_http in [false, true] {
        if let Ok(cert) = verify_certificate(user, Some(statement), NOW, allow_http) {
            assert_signed_by(&root_key(), signing::DEVICE_CERTIFICATE, statement);
            let body = DeviceCertificate::decode(statement.body.as_slice()).expect("verified");
            assert_eq!(cert.user_id, user);
            assert_eq!(cert.device_id, body.device_id);
            assert!(is_valid_device_id(&cert.device_id), "{:?}", cert.device_id);
            assert_eq!(
                cert.device_key.as_bytes().as_slice(),
                body.device_public_key
            );
            assert_eq!(
                Ok(cert.home_server.clone()),
                Origin::parse(&body.home_server, allow_http)
            );
            assert!(allow_http || cert.home_server.is_https());
            assert!(0 <= cert.issued_at && cert.issued_at < cert.expires_at);
            assert!(cert.expires_at - cert.issued_at <= MAX_CERTIFICATE_LIFETIME_SECS);
            assert!(cert.issued_at - CLOCK_SKEW_SECS <= NOW && NOW < cert.expires_at);
            assert_eq!(&cert.statement, statement);
        }
    }
}

fn check_revocation(user: &str, statement: &SignedStatement) {
    if let Ok(revocation) = verify_revocation(user, Some(statement), NOW) {
        assert_signed_by(&root_key(), signing::DEVICE_REVOCATION, statement);
        assert_eq!(revocation.user_id, user);
        assert!(is_valid_device_id(&revocation.device_id));
        assert!(0 <= revocation.revoked_at && revocation.revoked_at - CLOCK_SKEW_SECS <= NOW);
    }
}

fn check_proof(statement: &SignedStatement) {
    if let Ok(nonce) = verify_proof(certificate(), Some(statement), &me(), NOW) {
        assert_signed_by(&device_key(), signing::LOGIN_PROOF, statement);
        let proof = LoginProof::decode(statement.body.as_slice()).expect("verified");
        assert_eq!(proof.device_id, DEVICE_ID);
        assert_eq!(proof.audience, ME);
        let timestamp = proof.timestamp.expect("verified").seconds;
        assert!((NOW - timestamp).abs() <= CLOCK_SKEW_SECS);
        assert_eq!(nonce.as_slice(), proof.nonce);
    }
}
