//! Invite links (PROTOCOL.md section 5): the client's `invites::parse_link`, the guild server's
//! `invite::validate_token`, and the guild's formatter `invite::link`.
//!
//! Input: `<link> 0xFF <bytes>`. Properties:
//! - nothing panics on any link;
//! - a link the client accepts yields a non-empty token, exactly the text after the first
//!   `?token=`, and an origin with no surrounding space or trailing slash;
//! - the token rule accepts exactly 10 ASCII letters or digits;
//! - round trip: for any origin the server can have, UUID guild and channel ids and a valid
//!   token built from the bytes, the client parses the server's link back to that origin and
//!   token.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mzchat_client::invites::parse_link;
use mzchat_fuzz::{ME, fields};
use mzchat_guild::domain::invite::{TOKEN_LEN, link, validate_token};
use mzchat_platform::Origin;

fuzz_target!(|data: &[u8]| {
    let parts = fields(data, 2);
    let text = String::from_utf8_lossy(parts[0]);
    check_parse(&text);
    let _ = round_trip(&mut Unstructured::new(parts[1]));
});

fn check_parse(text: &str) {
    if let Ok((origin, token)) = parse_link(text) {
        assert!(!token.is_empty());
        let after = text
            .split_once("?token=")
            .expect("accepted links have a token")
            .1;
        assert_eq!(token, after);
        assert_eq!(origin.trim(), origin);
        assert!(!origin.ends_with('/'), "{origin:?}");
    }
    // The server-side token rule, restated.
    let expected = text.len() == TOKEN_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric());
    assert_eq!(validate_token(text).is_ok(), expected, "{text:?}");
}

fn round_trip(u: &mut Unstructured) -> Result<()> {
    let origin_text: &str = u.arbitrary()?;
    let allow_http: bool = u.arbitrary()?;
    let origin = Origin::parse(origin_text, allow_http)
        .unwrap_or_else(|_| Origin::parse(ME, false).expect("ME"));
    let guild = uuid::Uuid::from_bytes(u.arbitrary()?)
        .hyphenated()
        .to_string();
    let channel = uuid::Uuid::from_bytes(u.arbitrary()?)
        .hyphenated()
        .to_string();
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let token: String = (0..TOKEN_LEN)
        .map(|_| Ok(char::from(*u.choose(BASE62)?)))
        .collect::<Result<_>>()?;
    assert!(validate_token(&token).is_ok());
    let link = link(origin.as_str(), &guild, &channel, &token);
    assert_eq!(
        parse_link(&link),
        Ok((origin.as_str().to_owned(), token)),
        "{link:?} does not parse back"
    );
    Ok(())
}
