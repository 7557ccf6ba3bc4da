//! Access tokens (PROTOCOL.md section 3): `session_token::verify`, `encode` and `bearer`.
//!
//! Input: `<token> 0xFF <header JSON> 0xFF <claims JSON> 0xFF <authorization value> 0xFF <bytes>`.
//! Properties:
//! - nothing panics;
//! - a token accepted as received carries exactly the signature the fixed key makes, names this
//!   issuer and has not expired; so does one built from the fuzzer's header and claims JSON and
//!   signed by the fixed key (which gets past the signature to the JSON and id expansion);
//! - accepted claims survive being issued again unchanged (what a refresh does);
//! - `bearer` answers the trimmed text after `Bearer ` and nothing else;
//! - round trip: arbitrary claims built from the last field, encoded under an arbitrary key id,
//!   verify to the same claims (guilds with no extra role left out, as documented), and are
//!   refused under another issuer, another key, or once expired.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;
use mzchat_fuzz::{ME, NOW, fields};
use mzchat_platform::session_token::{self, Claims, MAX_TOKEN_BYTES, TokenError};
use tonic::metadata::{MetadataMap, MetadataValue};

const KID: &str = "k1";

/// The session key of the unit tests.
fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn lookup(kid: &str) -> Option<VerifyingKey> {
    (kid == KID).then(|| key().verifying_key())
}

fuzz_target!(|data: &[u8]| {
    let parts = fields(data, 5);
    check_received(&String::from_utf8_lossy(parts[0]));
    check_signed(parts[1], parts[2]);
    check_bearer(parts[3]);
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(parts[4])) {
        round_trip(&input);
    }
});

fn check_received(token: &str) {
    let Ok(claims) = session_token::verify(token, lookup, ME, NOW) else {
        return;
    };
    let (signed, signature) = token
        .rsplit_once('.')
        .expect("an accepted token has 3 parts");
    let expected = key().sign(signed.as_bytes());
    assert_eq!(
        signature,
        URL_SAFE_NO_PAD.encode(expected.to_bytes()),
        "forged token accepted"
    );
    assert_eq!(claims.iss, ME);
    assert!(NOW < claims.exp);
    // Issued again, the claims come back as they are (guilds with no extra role left out).
    let mut expected = claims.clone();
    expected.guild_roles.retain(|_, roles| !roles.is_empty());
    match session_token::encode(&claims, KID, &key()) {
        Ok(again) => assert_eq!(session_token::verify(&again, lookup, ME, NOW), Ok(expected)),
        Err(e) => assert_eq!(e, TokenError::TooLarge),
    }
}

/// Header and claims of the fuzzer's choosing, really signed by the fixed key.
fn check_signed(header: &[u8], claims: &[u8]) {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = key().sign(signed.as_bytes());
    check_received(&format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ));
}

fn check_bearer(value: &[u8]) {
    let Ok(value) = MetadataValue::try_from(value) else {
        return;
    };
    let raw = value.as_bytes().to_vec();
    let mut metadata = MetadataMap::new();
    metadata.insert("authorization", value);
    if let Some(token) = session_token::bearer(&metadata) {
        let text = std::str::from_utf8(&raw).expect("a bearer token is text");
        let rest = text
            .strip_prefix("Bearer ")
            .expect("a bearer token follows `Bearer `");
        assert_eq!(token, rest.trim());
        check_received(token);
    }
}

/// A guild or role id: a UUID, as the servers issue them, or any text.
#[derive(Debug, Arbitrary)]
enum Id {
    Uuid([u8; 16]),
    Text(String),
}

impl Id {
    fn text(&self) -> String {
        match self {
            Id::Uuid(bytes) => uuid::Uuid::from_bytes(*bytes).hyphenated().to_string(),
            Id::Text(text) => text.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    iss: String,
    sub: String,
    did: String,
    iat: i64,
    exp: i64,
    jti: String,
    home: String,
    guild_roles: Vec<(Id, Vec<Id>)>,
    versions: Vec<(Id, u64)>,
    kid: String,
    now: i64,
}

fn round_trip(input: &Input) {
    let claims = Claims {
        iss: input.iss.clone(),
        sub: input.sub.clone(),
        did: input.did.clone(),
        iat: input.iat,
        exp: input.exp,
        jti: input.jti.clone(),
        home: input.home.clone(),
        guild_roles: (input.guild_roles.iter())
            .map(|(guild, roles)| (guild.text(), roles.iter().map(Id::text).collect()))
            .collect::<BTreeMap<_, Vec<_>>>(),
        permission_versions_by_guild: (input.versions.iter())
            .map(|(guild, version)| (guild.text(), *version))
            .collect(),
    };
    let key = key();
    let token = match session_token::encode(&claims, &input.kid, &key) {
        Ok(token) => token,
        Err(e) => return assert_eq!(e, TokenError::TooLarge),
    };
    assert!(token.len() <= MAX_TOKEN_BYTES);
    let ours = |kid: &str| (kid == input.kid).then(|| key.verifying_key());
    let mut expected = claims.clone();
    expected.guild_roles.retain(|_, roles| !roles.is_empty());
    let expected = if input.now >= claims.exp {
        Err(TokenError::Expired)
    } else {
        Ok(expected)
    };
    assert_eq!(
        session_token::verify(&token, ours, &claims.iss, input.now),
        expected
    );
    let other_issuer = format!("{}/", claims.iss);
    assert_eq!(
        session_token::verify(&token, ours, &other_issuer, input.now),
        Err(TokenError::Issuer)
    );
    let stranger =
        |kid: &str| (kid == input.kid).then(|| SigningKey::from_bytes(&[3; 32]).verifying_key());
    assert_eq!(
        session_token::verify(&token, stranger, &claims.iss, input.now),
        Err(TokenError::Signature)
    );
}
