//! Access tokens (PROTOCOL.md section 3): JWTs signed with EdDSA (Ed25519) by a server's session
//! key. Only this narrow form is accepted: header `{"alg":"EdDSA","typ":"JWT","kid":...}`, the
//! signature checked before the claims are parsed, and `iss` equal to the verifying server.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Tokens longer than this are neither issued nor parsed. A member of 100 guilds with two extra
/// roles in each stays below it; the gRPC server accepts 32 KiB of headers.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuing server's origin.
    pub iss: String,
    /// User id.
    pub sub: String,
    /// Device id.
    pub did: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The user's home server origin.
    pub home: String,
    /// Guild id -> role ids (`@everyone` implied, not listed; guilds with no other role left out).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "compact_ids::roles"
    )]
    pub guild_roles: BTreeMap<String, Vec<String>>,
    /// Guild id -> permission version.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "compact_ids::versions"
    )]
    pub permission_versions_by_guild: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    kid: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("access token is malformed")]
    Malformed,
    #[error("access token algorithm must be EdDSA")]
    Algorithm,
    #[error("access token was signed by an unknown key")]
    UnknownKey,
    #[error("access token signature does not verify")]
    Signature,
    #[error("access token was issued by another server")]
    Issuer,
    #[error("access token has expired")]
    Expired,
    #[error("session claims do not fit in an access token")]
    TooLarge,
}

/// Signs `claims` with `key`, naming it `kid`.
pub fn encode(claims: &Claims, kid: &str, key: &SigningKey) -> Result<String, TokenError> {
    let header = Header {
        alg: "EdDSA".into(),
        typ: Some("JWT".into()),
        kid: kid.into(),
    };
    // Serialising these plain structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = key.sign(signing_input.as_bytes());
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    );
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    Ok(token)
}

/// Guild and role ids (UUIDs) travel as 22 characters of base64url instead of 36, which keeps
/// a token for 100 guilds within HTTP header limits. Anything else passes unchanged, except
/// that an id which would read back as a compacted UUID (or starts with `~`) travels behind a
/// `~`, so no two ids share a form.
mod compact_ids {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    const ESCAPE: char = '~';

    fn looks_compacted(text: &str) -> bool {
        text.len() == 22
            && URL_SAFE_NO_PAD
                .decode(text)
                .is_ok_and(|bytes| uuid::Uuid::from_slice(&bytes).is_ok())
    }

    pub fn compact(id: &str) -> String {
        match uuid::Uuid::parse_str(id) {
            Ok(uuid) if uuid.hyphenated().to_string() == id => {
                URL_SAFE_NO_PAD.encode(uuid.as_bytes())
            }
            _ if looks_compacted(id) || id.starts_with(ESCAPE) => format!("{ESCAPE}{id}"),
            _ => id.to_owned(),
        }
    }

    pub fn expand(text: &str) -> String {
        if let Some(id) = text.strip_prefix(ESCAPE) {
            return id.to_owned();
        }
        if text.len() == 22
            && let Ok(bytes) = URL_SAFE_NO_PAD.decode(text)
            && let Ok(uuid) = uuid::Uuid::from_slice(&bytes)
        {
            return uuid.hyphenated().to_string();
        }
        text.to_owned()
    }

    pub mod roles {
        use std::collections::BTreeMap;

        use serde::{Deserialize, Deserializer, Serializer, ser::SerializeMap};

        pub fn serialize<S: Serializer>(
            map: &BTreeMap<String, Vec<String>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let non_empty: Vec<_> = map.iter().filter(|(_, roles)| !roles.is_empty()).collect();
            let mut out = s.serialize_map(Some(non_empty.len()))?;
            for (guild, roles) in non_empty {
                let roles: Vec<String> = roles.iter().map(|r| super::compact(r)).collect();
                out.serialize_entry(&super::compact(guild), &roles)?;
            }
            out.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
            let raw = BTreeMap::<String, Vec<String>>::deserialize(d)?;
            Ok(raw
                .into_iter()
                .map(|(guild, roles)| {
                    (
                        super::expand(&guild),
                        roles.iter().map(|r| super::expand(r)).collect(),
                    )
                })
                .collect())
        }
    }

    pub mod versions {
        use std::collections::BTreeMap;

        use serde::{Deserialize, Deserializer, Serializer, ser::SerializeMap};

        pub fn serialize<S: Serializer>(
            map: &BTreeMap<String, u64>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let mut out = s.serialize_map(Some(map.len()))?;
            for (guild, version) in map {
                out.serialize_entry(&super::compact(guild), version)?;
            }
            out.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, u64>, D::Error> {
            let raw = BTreeMap::<String, u64>::deserialize(d)?;
            Ok(raw
                .into_iter()
                .map(|(guild, version)| (super::expand(&guild), version))
                .collect())
        }
    }
}

/// Verifies a token: signature under the key its `kid` names, then issuer and expiry.
pub fn verify(
    token: &str,
    key_for: impl Fn(&str) -> Option<VerifyingKey>,
    issuer: &str,
    now: i64,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(TokenError::Algorithm);
    }
    let key = key_for(&header.kid).ok_or(TokenError::UnknownKey)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or(TokenError::Malformed)?;
    let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
    key.verify_strict(signing_input.as_bytes(), &signature)
        .map_err(|_| TokenError::Signature)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenError::Malformed)?;
    if claims.iss != issuer {
        return Err(TokenError::Issuer);
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// The bearer token of a request's `authorization` metadata, if any.
pub fn bearer(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn claims() -> Claims {
        Claims {
            iss: "https://a.example".into(),
            sub: "user".into(),
            did: "phone".into(),
            iat: 1_000,
            exp: 4_600,
            jti: "j".into(),
            home: "https://a.example".into(),
            guild_roles: BTreeMap::from([("g".into(), vec!["r".into()])]),
            permission_versions_by_guild: BTreeMap::from([("g".into(), 3)]),
        }
    }

    pub(crate) fn key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn lookup(kid: &str) -> Option<VerifyingKey> {
        (kid == "k1").then(|| key().verifying_key())
    }

    #[test]
    fn a_token_round_trips_under_its_key() {
        let token = encode(&claims(), "k1", &key()).expect("encode");
        assert_eq!(
            verify(&token, lookup, "https://a.example", 2_000),
            Ok(claims())
        );
    }

    /// Found by fuzzing (fuzz/regressions/session_token): an id of 22 base64url characters
    /// came back as the UUID it happens to encode.
    #[test]
    fn ids_that_are_not_uuids_pass_unchanged() {
        let uuid = "0191d2a0-7b6c-7cc2-9a3e-5f1e2d3c4b5a".to_owned();
        let mut claims = claims();
        claims.guild_roles = BTreeMap::from([
            (
                "AAAAAAAAAAAAAAAAAAAAAA".into(),
                vec!["~r".into(), uuid.clone()],
            ),
            (uuid.clone(), vec!["~~".into()]),
        ]);
        claims.permission_versions_by_guild =
            BTreeMap::from([("AAAAAAAAAAAAAAAAAAAAAA".into(), 1), (uuid, 2)]);
        let token = encode(&claims, "k1", &key()).expect("encode");
        assert_eq!(
            verify(&token, lookup, "https://a.example", 2_000),
            Ok(claims)
        );
    }

    #[test]
    fn rejects_expired_foreign_unknown_and_tampered_tokens() {
        let token = encode(&claims(), "k1", &key()).expect("encode");
        assert_eq!(
            verify(&token, lookup, "https://a.example", 4_600),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&token, lookup, "https://b.example", 2_000),
            Err(TokenError::Issuer)
        );
        let other = encode(&claims(), "k2", &key()).expect("encode");
        assert_eq!(
            verify(&other, lookup, "https://a.example", 2_000),
            Err(TokenError::UnknownKey)
        );
        let forged = encode(&claims(), "k1", &SigningKey::from_bytes(&[1; 32])).expect("encode");
        assert_eq!(
            verify(&forged, lookup, "https://a.example", 2_000),
            Err(TokenError::Signature)
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut evil = claims();
        evil.sub = "someone-else".into();
        let evil_claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).expect("json"));
        parts[1] = &evil_claims;
        assert_eq!(
            verify(&parts.join("."), lookup, "https://a.example", 2_000),
            Err(TokenError::Signature)
        );
        assert_eq!(
            verify("a.b", lookup, "https://a.example", 2_000),
            Err(TokenError::Malformed)
        );
    }

    fn uuid(n: u128) -> String {
        uuid::Uuid::from_u128(n).hyphenated().to_string()
    }

    #[test]
    fn a_member_of_100_guilds_gets_a_usable_token() {
        let mut claims = claims();
        claims.guild_roles.clear();
        claims.permission_versions_by_guild.clear();
        for g in 0..100u128 {
            claims
                .permission_versions_by_guild
                .insert(uuid(g), 1_000 + g as u64);
            claims
                .guild_roles
                .insert(uuid(g), vec![uuid(10_000 + g), uuid(20_000 + g)]);
        }
        let token = encode(&claims, "k1", &key()).expect("fits");
        assert!(token.len() < MAX_TOKEN_BYTES, "{} bytes", token.len());
        assert_eq!(
            verify(&token, lookup, "https://a.example", 2_000),
            Ok(claims)
        );
    }

    #[test]
    fn guilds_without_extra_roles_are_left_out_of_guild_roles() {
        let mut claims = claims();
        claims.guild_roles.insert(uuid(7), vec![]);
        let token = encode(&claims, "k1", &key()).expect("encode");
        let decoded = verify(&token, lookup, "https://a.example", 2_000).expect("verify");
        assert!(!decoded.guild_roles.contains_key(&uuid(7)));
    }

    #[test]
    fn rejects_other_algorithms() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).expect("json"));
        assert_eq!(
            verify(
                &format!("{header}.{body}."),
                lookup,
                "https://a.example",
                2_000
            ),
            Err(TokenError::Algorithm)
        );
    }
}
