//! The signed metadata of a server-to-server call (PROTOCOL.md section 7):
//! `mzchat-signature = Ed25519(server key, "mzchat/v1/s2s" 0x00 method_path "\n" destination
//! "\n" timestamp "\n" hex(sha256(request message bytes)))`. Pure functions; key lookup and the
//! body hash are the caller's.

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use http::HeaderMap;

use crate::Origin;

pub const ORIGIN: &str = "mzchat-origin";
pub const DESTINATION: &str = "mzchat-destination";
pub const TIMESTAMP: &str = "mzchat-timestamp";
pub const KEY_ID: &str = "mzchat-key-id";
pub const SIGNATURE: &str = "mzchat-signature";

/// Allowed clock difference between two servers.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

pub fn signing_input(
    method_path: &str,
    destination: &str,
    timestamp: i64,
    request_sha256: &[u8],
) -> Vec<u8> {
    let mut input = b"mzchat/v1/s2s\0".to_vec();
    input.extend_from_slice(
        format!(
            "{method_path}\n{destination}\n{timestamp}\n{}",
            hex::encode(request_sha256)
        )
        .as_bytes(),
    );
    input
}

/// The signature travels as unpadded standard base64 (gRPC ASCII metadata).
pub fn encode_signature(signature: &[u8]) -> String {
    STANDARD_NO_PAD.encode(signature)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum S2sError {
    #[error("server call: missing or malformed {0} metadata")]
    Header(&'static str),
    #[error("server call is addressed to {0}, not to this server")]
    WrongDestination(String),
    #[error("server call timestamp is more than 5 minutes from this server's clock")]
    Stale,
    #[error("server call signature does not verify under {origin}'s key {key_id}")]
    BadSignature { origin: String, key_id: String },
    #[error("{0} publishes no valid server key {1}")]
    UnknownKey(String, String),
    #[error("federation with {0} is not allowed by this server's policy")]
    Denied(String),
    #[error("server call: {0}")]
    Body(&'static str),
}

/// The metadata of one inbound call, parsed but not yet verified.
#[derive(Debug, Clone)]
pub struct SignedCall {
    pub origin: Origin,
    pub destination: String,
    pub timestamp: i64,
    pub key_id: String,
    pub signature: [u8; 64],
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, S2sError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 512)
        .ok_or(S2sError::Header(name))
}

impl SignedCall {
    pub fn parse(headers: &HeaderMap, allow_http: bool) -> Result<Self, S2sError> {
        let origin = Origin::parse(header(headers, ORIGIN)?, allow_http)
            .map_err(|_| S2sError::Header(ORIGIN))?;
        let timestamp = header(headers, TIMESTAMP)?
            .parse()
            .map_err(|_| S2sError::Header(TIMESTAMP))?;
        let signature = STANDARD_NO_PAD
            .decode(header(headers, SIGNATURE)?.trim_end_matches('='))
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .ok_or(S2sError::Header(SIGNATURE))?;
        Ok(Self {
            origin,
            destination: header(headers, DESTINATION)?.to_owned(),
            timestamp,
            key_id: header(headers, KEY_ID)?.to_owned(),
            signature,
        })
    }

    /// Checks what needs no key: the call is for `me` and fresh.
    pub fn check_envelope(&self, me: &Origin, now: i64) -> Result<(), S2sError> {
        if self.destination != me.as_str() {
            return Err(S2sError::WrongDestination(self.destination.clone()));
        }
        if now.abs_diff(self.timestamp) > MAX_SKEW_SECS.unsigned_abs() {
            return Err(S2sError::Stale);
        }
        Ok(())
    }

    pub fn verify(
        &self,
        key: &VerifyingKey,
        method_path: &str,
        request_sha256: &[u8],
    ) -> Result<(), S2sError> {
        let input = signing_input(
            method_path,
            &self.destination,
            self.timestamp,
            request_sha256,
        );
        key.verify(&input, &Signature::from_bytes(&self.signature))
            .map_err(|_| S2sError::BadSignature {
                origin: self.origin.to_string(),
                key_id: self.key_id.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use http::HeaderValue;

    use super::*;

    const PATH: &str = "/mzchat.federation.v1.IdentityFederationService/VerifyUser";

    fn signed(key: &SigningKey, destination: &str, timestamp: i64, sha: &[u8]) -> HeaderMap {
        let signature = key.sign(&signing_input(PATH, destination, timestamp, sha));
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            headers.insert(name, HeaderValue::from_str(&value).expect("ascii"));
        };
        put(ORIGIN, "https://a.example".into());
        put(DESTINATION, destination.into());
        put(TIMESTAMP, timestamp.to_string());
        put(KEY_ID, "ed25519:k1".into());
        put(SIGNATURE, encode_signature(&signature.to_bytes()));
        headers
    }

    #[test]
    fn a_signed_call_verifies_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let me = Origin::parse("https://b.example", false).expect("origin");
        let headers = signed(&key, "https://b.example", 1_000, &[1; 32]);
        let call = SignedCall::parse(&headers, false).expect("parses");
        call.check_envelope(&me, 1_100).expect("fresh and for me");
        call.verify(&key.verifying_key(), PATH, &[1; 32])
            .expect("verifies");
        assert!(call.verify(&key.verifying_key(), PATH, &[2; 32]).is_err());
        assert!(
            call.verify(&key.verifying_key(), "/other/Method", &[1; 32])
                .is_err()
        );
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(call.verify(&other, PATH, &[1; 32]).is_err());
        assert_eq!(call.check_envelope(&me, 1_000 + 301), Err(S2sError::Stale));
    }

    #[test]
    fn a_call_for_another_server_is_refused() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let headers = signed(&key, "https://c.example", 1_000, &[1; 32]);
        let call = SignedCall::parse(&headers, false).expect("parses");
        let me = Origin::parse("https://b.example", false).expect("origin");
        assert!(matches!(
            call.check_envelope(&me, 1_000),
            Err(S2sError::WrongDestination(_))
        ));
    }

    #[test]
    fn missing_metadata_is_named() {
        let mut headers = signed(
            &SigningKey::from_bytes(&[7; 32]),
            "https://b.example",
            1,
            &[0; 32],
        );
        headers.remove(SIGNATURE);
        assert_eq!(
            SignedCall::parse(&headers, false).err(),
            Some(S2sError::Header(SIGNATURE))
        );
    }
}
