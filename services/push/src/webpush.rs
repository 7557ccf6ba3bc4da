//! Message encryption for Web Push (RFC 8291), in the aes128gcm content coding (RFC 8188): one
//! record, the sender's ephemeral P-256 key in the header. Only the user agent holding the
//! subscription's private key and auth secret can read the body.

use aes_gcm::{Aes128Gcm, KeyInit, aead::Aead};
use hkdf::Hkdf;
use p256::{PublicKey, SecretKey, elliptic_curve::sec1::ToEncodedPoint};
use sha2::Sha256;

/// Record size announced in the header; the whole message fits in one record.
const RECORD_SIZE: u32 = 4096;
/// Largest plaintext one record carries (record size minus the delimiter and the GCM tag).
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - 1 - 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncryptError {
    #[error("p256dh is not a valid uncompressed P-256 public key")]
    BadPublicKey,
    #[error("auth secret must be 16 bytes")]
    BadAuth,
    #[error("push payload too large to encrypt in one record")]
    TooLarge,
    #[error("random source unavailable")]
    Random,
}

/// Encrypts `plaintext` for the subscription `(ua_public, auth)`.
pub fn encrypt(ua_public: &[u8], auth: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EncryptError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|_| EncryptError::Random)?;
    let secret = loop {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|_| EncryptError::Random)?;
        // A random 32-byte string is a valid scalar with overwhelming probability.
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            break secret;
        }
    };
    encrypt_with(ua_public, auth, plaintext, &secret, &salt)
}

fn expand<const N: usize>(prk: &Hkdf<Sha256>, info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    // N is at most 32 here, far below HKDF-SHA256's limit.
    prk.expand(info, &mut out).expect("HKDF output length");
    out
}

/// `encrypt` with the sender's ephemeral key and salt given (the RFC's worked example).
pub fn encrypt_with(
    ua_public: &[u8],
    auth: &[u8],
    plaintext: &[u8],
    as_secret: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, EncryptError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EncryptError::TooLarge);
    }
    if auth.len() != 16 {
        return Err(EncryptError::BadAuth);
    }
    let ua_key = PublicKey::from_sec1_bytes(ua_public).map_err(|_| EncryptError::BadPublicKey)?;
    let ua_point = ua_key.to_encoded_point(false);
    let as_point = as_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_key.as_affine());

    // IKM = HKDF(auth, ecdh_secret, "WebPush: info" 0x00 ua_public as_public, 32)
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_point.as_bytes());
    key_info.extend_from_slice(as_point.as_bytes());
    let ikm: [u8; 32] = expand(
        &Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes()),
        &key_info,
    );
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let cek: [u8; 16] = expand(&prk, b"Content-Encoding: aes128gcm\0");
    let nonce: [u8; 12] = expand(&prk, b"Content-Encoding: nonce\0");

    let mut record = plaintext.to_vec();
    record.push(2); // the last (and only) record's delimiter
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| EncryptError::BadAuth)?;
    let ciphertext = cipher
        .encrypt(&nonce.into(), record.as_slice())
        .map_err(|_| EncryptError::TooLarge)?;

    let mut body = Vec::with_capacity(86 + ciphertext.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_point.as_bytes().len() as u8);
    body.extend_from_slice(as_point.as_bytes());
    body.extend_from_slice(&ciphertext);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).expect("base64url")
    }

    /// RFC 8291 section 5: the published example, byte for byte.
    #[test]
    fn the_rfc_example_encrypts_to_the_published_body() {
        let as_secret = SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
            .expect("key");
        let ua_public = b64(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        );
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().expect("16 bytes");
        let body = encrypt_with(
            &ua_public,
            &b64("BTBZMqHH6r4Tts7J_aSIgg"),
            b"When I grow up, I want to be a watermelon",
            &as_secret,
            &salt,
        )
        .expect("encrypt");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    /// The user agent's side: what a browser does with the body.
    fn decrypt(body: &[u8], ua_secret: &SecretKey, auth: &[u8]) -> Vec<u8> {
        let (salt, rest) = body.split_at(16);
        let id_len = rest[4] as usize;
        let (as_public, ciphertext) = rest[5..].split_at(id_len);
        let as_key = PublicKey::from_sec1_bytes(as_public).expect("sender key");
        let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_key.as_affine());
        let mut key_info = b"WebPush: info\0".to_vec();
        key_info.extend_from_slice(ua_secret.public_key().to_encoded_point(false).as_bytes());
        key_info.extend_from_slice(as_public);
        let ikm: [u8; 32] = expand(
            &Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes()),
            &key_info,
        );
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let cek: [u8; 16] = expand(&prk, b"Content-Encoding: aes128gcm\0");
        let nonce: [u8; 12] = expand(&prk, b"Content-Encoding: nonce\0");
        let mut record = Aes128Gcm::new_from_slice(&cek)
            .expect("key")
            .decrypt(&nonce.into(), ciphertext)
            .expect("authentic");
        assert_eq!(record.pop(), Some(2), "last-record delimiter");
        record
    }

    #[test]
    fn the_recipient_decrypts_what_was_sent() {
        let ua_secret = SecretKey::from_slice(&b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
            .expect("key");
        let ua_public = ua_secret.public_key().to_encoded_point(false);
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let body =
            encrypt(ua_public.as_bytes(), &auth, b"{\"kind\":\"MENTION\"}").expect("encrypt");
        assert_eq!(decrypt(&body, &ua_secret, &auth), b"{\"kind\":\"MENTION\"}");
    }

    #[test]
    fn bad_keys_and_oversized_payloads_are_refused() {
        let ua = SecretKey::from_slice(&[7; 32]).expect("key").public_key();
        let ua = ua.to_encoded_point(false);
        assert_eq!(
            encrypt(&[4; 65], &[0; 16], b"x"),
            Err(EncryptError::BadPublicKey)
        );
        assert_eq!(
            encrypt(ua.as_bytes(), &[0; 15], b"x"),
            Err(EncryptError::BadAuth)
        );
        let big = vec![0u8; MAX_PLAINTEXT + 1];
        assert_eq!(
            encrypt(ua.as_bytes(), &[0; 16], &big),
            Err(EncryptError::TooLarge)
        );
        let fresh = encrypt(ua.as_bytes(), &[0; 16], b"x").expect("fresh keys each time");
        assert_ne!(
            fresh,
            encrypt(ua.as_bytes(), &[0; 16], b"x").expect("again")
        );
    }
}
