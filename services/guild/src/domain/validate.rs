//! Input rules shared by the use cases.

use super::{Result, invalid};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_TOPIC_CHARS: usize = 1024;
pub const MAX_REASON_CHARS: usize = 512;

/// A display name (guild, channel, role): trimmed, 1-100 characters, no control characters.
pub fn name(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    let chars = value.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "{field} must be 1-{MAX_NAME_CHARS} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

pub fn text(field: &str, value: &str, max_chars: usize) -> Result<String> {
    if value.chars().count() > max_chars {
        return Err(invalid(format!(
            "{field} must be at most {max_chars} characters"
        )));
    }
    Ok(value.to_owned())
}

/// A server-generated id (UUID), canonical lower-case.
pub fn id(field: &str, value: &str) -> Result<String> {
    uuid::Uuid::parse_str(value)
        .ok()
        .filter(|u| u.hyphenated().to_string() == value)
        .map(|_| value.to_owned())
        .ok_or_else(|| {
            invalid(format!(
                "{field} must be an id as the server gave it (a UUID)"
            ))
        })
}

/// A media file id: `<uuid>.<ext>`, the extension short, lower-case letters and digits.
pub fn file_id(field: &str, value: &str) -> Result<()> {
    let well_formed = value.split_once('.').is_some_and(|(id, ext)| {
        self::id(field, id).is_ok()
            && (1..=8).contains(&ext.len())
            && ext
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    if well_formed {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} must hold file ids (<uuid>.<ext>)"
        )))
    }
}

/// A user id: 43 characters of base64url (the root key).
pub fn user_id(value: &str) -> Result<String> {
    let ok = value.len() == 43
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid("user_id must be 43 characters of base64url"))
    }
}

pub fn color(value: u32) -> Result<u32> {
    if value <= 0xFF_FF_FF {
        Ok(value)
    } else {
        Err(invalid("color must be 0xRRGGBB"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Rustaceans ").expect("valid"), "Rustaceans");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(101)).is_err());
        assert!(name("name", "a\nb").is_err());
    }

    #[test]
    fn ids_must_be_canonical_uuids() {
        let id_value = "0192f5e4-8a3b-7c2d-9e1f-123456789abc";
        assert!(id("guild_id", id_value).is_ok());
        assert!(id("guild_id", &id_value.to_uppercase()).is_err());
        assert!(id("guild_id", "general").is_err());
    }
}
