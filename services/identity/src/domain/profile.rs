//! Profile and per-user settings rules.

use mzchat_platform::Origin;

use super::{Result, invalid};

pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
pub const MAX_BIO_CHARS: usize = 512;
pub const MAX_GUILD_ORDER: usize = 500;

/// A profile change: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub avatar_file_id: Option<String>,
    pub avatar_color: Option<u32>,
}

impl ProfileChange {
    /// Normalises (trims the display name) and validates every present field.
    pub fn validated(mut self) -> Result<Self> {
        if let Some(name) = &mut self.display_name {
            *name = name.trim().to_owned();
            let chars = name.chars().count();
            if chars == 0 || chars > MAX_DISPLAY_NAME_CHARS {
                return Err(invalid("display_name must be 1-64 characters"));
            }
            if name.chars().any(char::is_control) {
                return Err(invalid("display_name must not contain control characters"));
            }
        }
        if let Some(bio) = &self.bio
            && bio.chars().count() > MAX_BIO_CHARS
        {
            return Err(invalid("bio must be at most 512 characters"));
        }
        if let Some(file_id) = &self.avatar_file_id
            && !file_id.is_empty()
        {
            validate_file_id(file_id)?;
        }
        if let Some(color) = self.avatar_color
            && color > 0xFF_FF_FF
        {
            return Err(invalid("avatar_color must be 0xRRGGBB"));
        }
        Ok(self)
    }
}

/// `<uuidv7>.<ext>` with a short alphanumeric extension (PROTOCOL.md section 1).
pub fn validate_file_id(file_id: &str) -> Result<()> {
    let error = || invalid("avatar_file_id must be a file id of the form <uuid>.<ext>");
    let (id, ext) = file_id.split_once('.').ok_or_else(error)?;
    let uuid = uuid::Uuid::parse_str(id).map_err(|_| error())?;
    let canonical = uuid.hyphenated().to_string() == id;
    let ext_ok = (1..=8).contains(&ext.len())
        && ext
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if canonical && ext_ok {
        Ok(())
    } else {
        Err(error())
    }
}

/// A guild reference in a user's guild order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GuildPlace {
    pub origin: String,
    pub guild_id: String,
}

pub fn validate_guild_order(entries: Vec<GuildPlace>, allow_http: bool) -> Result<Vec<GuildPlace>> {
    if entries.len() > MAX_GUILD_ORDER {
        return Err(invalid("guild order holds at most 500 guilds"));
    }
    let mut seen = std::collections::HashSet::new();
    entries
        .into_iter()
        .map(|entry| {
            let origin = Origin::parse(&entry.origin, allow_http)
                .map_err(|e| invalid(format!("guild order origin {:?}: {e}", entry.origin)))?;
            let guild = uuid::Uuid::parse_str(&entry.guild_id).map_err(|_| {
                invalid(format!(
                    "guild order guild_id {:?} is not a uuid",
                    entry.guild_id
                ))
            })?;
            let place = GuildPlace {
                origin: origin.to_string(),
                guild_id: guild.hyphenated().to_string(),
            };
            if !seen.insert(place.clone()) {
                return Err(invalid("guild order lists a guild twice"));
            }
            Ok(place)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_accepts_a_reasonable_profile() {
        let change = ProfileChange {
            display_name: Some("  Ada  ".into()),
            bio: Some("hello".into()),
            avatar_file_id: Some("0192f5e4-8a3b-7c2d-9e1f-123456789abc.png".into()),
            avatar_color: Some(0x33_66_99),
        }
        .validated()
        .expect("valid");
        assert_eq!(change.display_name.as_deref(), Some("Ada"));
    }

    #[test]
    fn rejects_empty_long_or_control_display_names() {
        for name in ["   ", &"x".repeat(65), "a\u{7}b"] {
            let change = ProfileChange {
                display_name: Some(name.into()),
                ..Default::default()
            };
            assert!(change.validated().is_err(), "{name:?}");
        }
    }

    #[test]
    fn rejects_bad_file_ids_and_colours() {
        for id in [
            "x.png",
            "0192f5e4-8a3b-7c2d-9e1f-123456789abc",
            "0192f5e4-8a3b-7c2d-9e1f-123456789abc.PNG",
            "../etc/passwd",
        ] {
            assert!(validate_file_id(id).is_err(), "{id}");
        }
        let change = ProfileChange {
            avatar_color: Some(0x1_00_00_00),
            ..Default::default()
        };
        assert!(change.validated().is_err());
    }

    #[test]
    fn guild_order_refuses_duplicates_and_bad_origins() {
        let place = GuildPlace {
            origin: "https://b.example".into(),
            guild_id: "0192f5e4-8a3b-7c2d-9e1f-123456789abc".into(),
        };
        assert!(validate_guild_order(vec![place.clone()], false).is_ok());
        assert!(validate_guild_order(vec![place.clone(), place.clone()], false).is_err());
        let bad = GuildPlace {
            origin: "b.example".into(),
            ..place
        };
        assert!(validate_guild_order(vec![bad], false).is_err());
    }
}
