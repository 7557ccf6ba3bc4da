use ed25519_dalek::SigningKey;
use mzchat_proto::common::{DeviceCertificate, DeviceRevocation, LoginProof};
use mzchat_proto::signing::{self, encode_user_id};
use prost_types::Timestamp;

use super::*;

const NOW: i64 = 1_800_000_000;

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

struct Keys {
    root: SigningKey,
    device: SigningKey,
}

impl Keys {
    fn new() -> Self {
        Self {
            root: SigningKey::from_bytes(&[1; 32]),
            device: SigningKey::from_bytes(&[2; 32]),
        }
    }

    fn user_id(&self) -> String {
        encode_user_id(&self.root.verifying_key())
    }

    fn certificate(&self) -> DeviceCertificate {
        DeviceCertificate {
            user_id: self.user_id(),
            device_id: "laptop".into(),
            device_public_key: self.device.verifying_key().to_bytes().to_vec(),
            home_server: "https://a.example".into(),
            issued_at: ts(NOW - 60),
            expires_at: ts(NOW + 86_400),
        }
    }

    fn sign_cert(&self, cert: &DeviceCertificate) -> SignedStatement {
        signing::sign(&self.root, signing::DEVICE_CERTIFICATE, cert)
    }

    fn proof(&self) -> LoginProof {
        LoginProof {
            audience: "https://a.example".into(),
            device_id: "laptop".into(),
            timestamp: ts(NOW),
            nonce: vec![7; 16],
        }
    }

    fn sign_proof(&self, proof: &LoginProof) -> SignedStatement {
        signing::sign(&self.device, signing::LOGIN_PROOF, proof)
    }
}

fn origin() -> Origin {
    Origin::parse("https://a.example", false).expect("origin")
}

fn assert_unauthenticated<T: std::fmt::Debug>(result: Result<T>, needle: &str) {
    match result {
        Err(IdentityError::Unauthenticated(message)) => {
            assert!(
                message.contains(needle),
                "{message:?} should mention {needle:?}"
            )
        }
        other => panic!("expected unauthenticated ({needle}), got {other:?}"),
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T>) {
    assert!(
        matches!(result, Err(IdentityError::InvalidArgument(_))),
        "expected invalid argument, got {result:?}"
    );
}

#[test]
fn accepts_a_valid_certificate_and_proof() {
    let keys = Keys::new();
    let cert = verify_certificate(
        &keys.user_id(),
        Some(&keys.sign_cert(&keys.certificate())),
        NOW,
        false,
    )
    .expect("valid certificate");
    assert_eq!(cert.device_id, "laptop");
    assert_eq!(cert.home_server.as_str(), "https://a.example");
    let nonce = verify_proof(&cert, Some(&keys.sign_proof(&keys.proof())), &origin(), NOW)
        .expect("valid proof");
    assert_eq!(nonce, [7; 16]);
}

#[test]
fn rejects_a_certificate_forged_with_another_root_key() {
    let keys = Keys::new();
    let forger = SigningKey::from_bytes(&[3; 32]);
    let forged = signing::sign(&forger, signing::DEVICE_CERTIFICATE, &keys.certificate());
    assert_unauthenticated(
        verify_certificate(&keys.user_id(), Some(&forged), NOW, false),
        "signature",
    );
}

#[test]
fn rejects_a_certificate_presented_for_another_user() {
    let keys = Keys::new();
    let other = encode_user_id(&SigningKey::from_bytes(&[4; 32]).verifying_key());
    // Checked under the claimed user's key, so the signature fails first.
    assert_unauthenticated(
        verify_certificate(
            &other,
            Some(&keys.sign_cert(&keys.certificate())),
            NOW,
            false,
        ),
        "signature",
    );
}

#[test]
fn rejects_expired_and_future_certificates() {
    let keys = Keys::new();
    let mut cert = keys.certificate();
    cert.issued_at = ts(NOW - 2 * 86_400);
    cert.expires_at = ts(NOW - 1);
    assert_unauthenticated(
        verify_certificate(&keys.user_id(), Some(&keys.sign_cert(&cert)), NOW, false),
        "expired",
    );
    let mut cert = keys.certificate();
    cert.issued_at = ts(NOW + 6 * 60);
    cert.expires_at = ts(NOW + 86_400);
    assert_unauthenticated(
        verify_certificate(&keys.user_id(), Some(&keys.sign_cert(&cert)), NOW, false),
        "not valid yet",
    );
    // Within the 5 minute skew is fine.
    cert.issued_at = ts(NOW + 4 * 60);
    assert!(verify_certificate(&keys.user_id(), Some(&keys.sign_cert(&cert)), NOW, false).is_ok());
}

#[test]
fn rejects_certificates_living_longer_than_a_year() {
    let keys = Keys::new();
    let mut cert = keys.certificate();
    cert.expires_at = ts(NOW - 60 + MAX_CERTIFICATE_LIFETIME_SECS + 1);
    assert_invalid(verify_certificate(
        &keys.user_id(),
        Some(&keys.sign_cert(&cert)),
        NOW,
        false,
    ));
}

#[test]
fn rejects_malformed_certificate_fields() {
    let keys = Keys::new();
    for mutate in [
        (|c: &mut DeviceCertificate| c.device_id = "bad id!".into()) as fn(&mut DeviceCertificate),
        |c| c.device_id = "x".repeat(65),
        |c| c.device_public_key = vec![1; 31],
        |c| c.home_server = "http://a.example".into(),
        |c| c.home_server = "https://a.example/path".into(),
        |c| c.issued_at = None,
    ] {
        let mut cert = keys.certificate();
        mutate(&mut cert);
        assert_invalid(verify_certificate(
            &keys.user_id(),
            Some(&keys.sign_cert(&cert)),
            NOW,
            false,
        ));
    }
    assert_invalid(verify_certificate(
        "not-a-key",
        Some(&keys.sign_cert(&keys.certificate())),
        NOW,
        false,
    ));
    assert_invalid(verify_certificate(&keys.user_id(), None, NOW, false));
}

#[test]
fn rejects_a_proof_for_another_server() {
    let keys = Keys::new();
    let cert = verify_certificate(
        &keys.user_id(),
        Some(&keys.sign_cert(&keys.certificate())),
        NOW,
        false,
    )
    .expect("valid certificate");
    let mut proof = keys.proof();
    proof.audience = "https://c.example".into();
    assert_unauthenticated(
        verify_proof(&cert, Some(&keys.sign_proof(&proof)), &origin(), NOW),
        "not for this server",
    );
}

#[test]
fn rejects_stale_and_future_proofs() {
    let keys = Keys::new();
    let cert = verify_certificate(
        &keys.user_id(),
        Some(&keys.sign_cert(&keys.certificate())),
        NOW,
        false,
    )
    .expect("valid certificate");
    for offset in [-301, 301] {
        let mut proof = keys.proof();
        proof.timestamp = ts(NOW + offset);
        assert_unauthenticated(
            verify_proof(&cert, Some(&keys.sign_proof(&proof)), &origin(), NOW),
            "5 minutes",
        );
    }
}

#[test]
fn rejects_a_proof_not_signed_by_the_certified_device() {
    let keys = Keys::new();
    let cert = verify_certificate(
        &keys.user_id(),
        Some(&keys.sign_cert(&keys.certificate())),
        NOW,
        false,
    )
    .expect("valid certificate");
    // Signed by the root key instead of the device key.
    let wrong = signing::sign(&keys.root, signing::LOGIN_PROOF, &keys.proof());
    assert_unauthenticated(
        verify_proof(&cert, Some(&wrong), &origin(), NOW),
        "signature",
    );
    let mut proof = keys.proof();
    proof.device_id = "phone".into();
    assert_invalid(verify_proof(
        &cert,
        Some(&keys.sign_proof(&proof)),
        &origin(),
        NOW,
    ));
    let mut proof = keys.proof();
    proof.nonce = vec![1; 8];
    assert_invalid(verify_proof(
        &cert,
        Some(&keys.sign_proof(&proof)),
        &origin(),
        NOW,
    ));
}

#[test]
fn verifies_revocations_signed_by_the_root_key_only() {
    let keys = Keys::new();
    let revocation = DeviceRevocation {
        user_id: keys.user_id(),
        device_id: "laptop".into(),
        revoked_at: ts(NOW),
    };
    let signed = signing::sign(&keys.root, signing::DEVICE_REVOCATION, &revocation);
    let verified = verify_revocation(&keys.user_id(), Some(&signed), NOW).expect("valid");
    assert_eq!(verified.device_id, "laptop");
    let by_device = signing::sign(&keys.device, signing::DEVICE_REVOCATION, &revocation);
    assert_unauthenticated(
        verify_revocation(&keys.user_id(), Some(&by_device), NOW),
        "signature",
    );
}

#[test]
fn extreme_timestamps_are_refused_without_overflow() {
    let keys = Keys::new();
    let mut cert = keys.certificate();
    cert.issued_at = ts(i64::MIN);
    cert.expires_at = ts(0);
    assert_invalid(verify_certificate(
        &keys.user_id(),
        Some(&keys.sign_cert(&cert)),
        NOW,
        false,
    ));
    let cert = verify_certificate(
        &keys.user_id(),
        Some(&keys.sign_cert(&keys.certificate())),
        NOW,
        false,
    )
    .expect("valid certificate");
    let mut proof = keys.proof();
    proof.timestamp = ts(i64::MAX);
    assert_invalid(verify_proof(
        &cert,
        Some(&keys.sign_proof(&proof)),
        &origin(),
        NOW,
    ));
}
