//! Invite tokens and links (PROTOCOL.md section 5).

use std::time::Duration;

use super::{GuildError, Result, invalid};

pub const TOKEN_LEN: usize = 10;
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 86_400);
pub const LONGEST_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// 10 characters of base62 from the operating system's CSPRNG, without modulo bias.
pub fn new_token() -> Result<String> {
    let mut token = String::with_capacity(TOKEN_LEN);
    while token.len() < TOKEN_LEN {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| GuildError::Internal(format!("random source: {e}")))?;
        // 248 = 62 * 4: bytes at or above it would favour the first symbols.
        for byte in bytes.into_iter().filter(|b| *b < 248) {
            if token.len() < TOKEN_LEN {
                token.push(BASE62[usize::from(byte % 62)] as char);
            }
        }
    }
    Ok(token)
}

pub fn validate_token(token: &str) -> Result<()> {
    if token.len() == TOKEN_LEN && token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(invalid("invite token must be 10 letters or digits"))
    }
}

/// The invite's lifetime: the default when absent, refused beyond 30 days.
pub fn max_age(requested: Option<Duration>) -> Result<Duration> {
    match requested {
        None => Ok(DEFAULT_MAX_AGE),
        Some(age) if age.is_zero() => Err(invalid("max_age must be positive")),
        Some(age) if age > LONGEST_MAX_AGE => Err(invalid("max_age must be at most 30 days")),
        Some(age) => Ok(age),
    }
}

/// `https://<host>[:port]/channels/<guildId>/<channelId>?token=<token>`.
pub fn link(origin: &str, guild_id: &str, channel_id: &str, token: &str) -> String {
    format!("{origin}/channels/{guild_id}/{channel_id}?token={token}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_ten_base62_characters_and_differ() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_eq!(a.len(), 10);
        assert!(validate_token(&a).is_ok());
        assert_ne!(a, b);
        assert!(validate_token("short").is_err());
        assert!(validate_token("abc-def_gh").is_err());
    }

    #[test]
    fn max_age_defaults_to_a_week_and_is_bounded() {
        assert_eq!(max_age(None).expect("default"), DEFAULT_MAX_AGE);
        assert!(max_age(Some(Duration::ZERO)).is_err());
        assert!(max_age(Some(Duration::from_secs(31 * 86_400))).is_err());
    }

    #[test]
    fn links_follow_the_protocol_format() {
        assert_eq!(
            link("https://b.example", "g", "c", "AbCdEf1234"),
            "https://b.example/channels/g/c?token=AbCdEf1234"
        );
    }
}
