//! Fixtures shared by the fuzz targets: fixed keys, a fixed clock and this server's origin, so
//! every input is replayable. The keys are the same seeds the unit tests use ([1; 32] for the
//! user's root key, [2; 32] for the device key), which lets the seed corpus be signed outside
//! Rust (fuzz/seeds.py).

use std::sync::OnceLock;

use ed25519_dalek::{Signer, SigningKey};
use mzchat_identity::domain::login::{VerifiedCertificate, verify_certificate};
use mzchat_platform::Origin;
use mzchat_proto::{
    common::{DeviceCertificate, SignedStatement},
    signing,
};

/// The server's clock in every target (2027-01-15).
pub const NOW: i64 = 1_800_000_000;
/// This server's origin: the audience of login proofs and the target of migrations.
pub const ME: &str = "https://a.example";
pub const DEVICE_ID: &str = "laptop";

pub fn root_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

pub fn device_key() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

/// The user id of `root_key()`.
pub fn user_id() -> String {
    signing::encode_user_id(&root_key().verifying_key())
}

pub fn me() -> Origin {
    Origin::parse(ME, false).expect("ME is a valid origin")
}

/// Signs `body` as it stands, unlike `signing::sign`, which encodes a message first: the fuzzer's
/// bytes become a statement the key really signed, so verification reaches the body's checks.
pub fn sign_raw(key: &SigningKey, statement_type: &str, body: &[u8]) -> SignedStatement {
    let signature = key.sign(&signing::signing_input(statement_type, body));
    SignedStatement {
        body: body.to_vec(),
        signature: signature.to_bytes().to_vec(),
    }
}

/// Ed25519 signatures are deterministic: a statement accepted under one of our keys must carry
/// exactly the signature that key makes over its body. Anything else would be a forgery.
pub fn assert_signed_by(key: &SigningKey, statement_type: &str, statement: &SignedStatement) {
    let expected = sign_raw(key, statement_type, &statement.body);
    assert_eq!(
        statement.signature, expected.signature,
        "a {statement_type} was accepted with a signature {key:?} did not make"
    );
}

/// The certificate of `device_key()` issued by `root_key()`, already verified: what
/// verify_proof and verify_migration take.
pub fn certificate() -> &'static VerifiedCertificate {
    static CERT: OnceLock<VerifiedCertificate> = OnceLock::new();
    CERT.get_or_init(|| {
        let cert = DeviceCertificate {
            user_id: user_id(),
            device_id: DEVICE_ID.into(),
            device_public_key: device_key().verifying_key().to_bytes().to_vec(),
            home_server: ME.into(),
            issued_at: Some(prost_types::Timestamp {
                seconds: NOW - 60,
                nanos: 0,
            }),
            expires_at: Some(prost_types::Timestamp {
                seconds: NOW + 86_400,
                nanos: 0,
            }),
        };
        let statement = signing::sign(&root_key(), signing::DEVICE_CERTIFICATE, &cert);
        verify_certificate(&user_id(), Some(&statement), NOW, false)
            .expect("the fixture certificate verifies")
    })
}

/// The device-id rule of PROTOCOL.md section 2, restated here to check accepted statements.
pub fn is_valid_device_id(device_id: &str) -> bool {
    (1..=64).contains(&device_id.len())
        && device_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Splits a fuzz input into `n` fields at 0xFF bytes (never part of UTF-8 text, so seed files
/// stay readable); the last field keeps the rest, missing fields are empty.
pub fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0xff).collect();
    out.resize(n, &[]);
    out
}
