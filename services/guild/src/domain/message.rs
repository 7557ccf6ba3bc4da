//! Message rules (PROTOCOL.md section 5): content, mentions and attachment limits come from
//! configuration; reactions are one emoji per (message, user).

use mzchat_platform::LimitsArgs;

use super::{Result, invalid, validate};

pub const MAX_EMOJI_BYTES: usize = 32;
pub const MAX_NONCE_CHARS: usize = 64;
pub const MAX_LIST_LIMIT: u32 = 100;
pub const DEFAULT_LIST_LIMIT: u32 = 50;

/// What a client sends (or edits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    pub content: String,
    pub mention_user_ids: Vec<String>,
    pub mention_everyone: bool,
    pub attachment_file_ids: Vec<String>,
}

impl Draft {
    /// Checks the draft against the limits; mentions come back deduplicated.
    pub fn validated(mut self, limits: &LimitsArgs) -> Result<Self> {
        let chars = self.content.chars().count();
        if chars > limits.max_message_chars as usize {
            return Err(invalid(format!(
                "content must be at most {} characters",
                limits.max_message_chars
            )));
        }
        if self.content.trim().is_empty() && self.attachment_file_ids.is_empty() {
            return Err(invalid("a message needs content or an attachment"));
        }
        if self.mention_user_ids.len() > limits.max_message_mentions as usize {
            return Err(invalid(format!(
                "a message mentions at most {} users",
                limits.max_message_mentions
            )));
        }
        for user_id in &self.mention_user_ids {
            validate::user_id(user_id)?;
        }
        self.mention_user_ids.sort();
        self.mention_user_ids.dedup();
        if self.attachment_file_ids.len() > limits.max_message_attachments as usize {
            return Err(invalid(format!(
                "a message carries at most {} attachments",
                limits.max_message_attachments
            )));
        }
        for file_id in &self.attachment_file_ids {
            validate::file_id("attachment_file_ids", file_id)?;
        }
        self.attachment_file_ids.dedup();
        Ok(self)
    }
}

pub fn nonce(value: &str) -> Result<Option<String>> {
    match value {
        "" => Ok(None),
        n if n.chars().count() <= MAX_NONCE_CHARS && !n.chars().any(char::is_control) => {
            Ok(Some(n.to_owned()))
        }
        _ => Err(invalid("nonce must be at most 64 characters")),
    }
}

/// An emoji: a short token without spaces or control characters (a Unicode emoji or a
/// `:name:` of the client's).
pub fn emoji(value: &str) -> Result<String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_EMOJI_BYTES
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(value.to_owned())
    } else {
        Err(invalid("emoji must be 1-32 bytes without spaces"))
    }
}

/// Where a page of history starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    Latest,
    Before(String),
    After(String),
    Around(String),
}

pub fn limit(requested: u32) -> Result<u64> {
    match requested {
        0 => Ok(u64::from(DEFAULT_LIST_LIMIT)),
        n if n <= MAX_LIST_LIMIT => Ok(u64::from(n)),
        _ => Err(invalid("limit must be at most 100")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(flatten)]
            limits: LimitsArgs,
        }
        Args::parse_from(["test"]).limits
    }

    fn user(n: u8) -> String {
        format!("{}{}", "A".repeat(42), char::from(b'a' + n))
    }

    #[test]
    fn accepts_text_and_deduplicates_mentions() {
        let draft = Draft {
            content: "hi".into(),
            mention_user_ids: vec![user(1), user(0), user(1)],
            ..Default::default()
        }
        .validated(&limits())
        .expect("valid");
        assert_eq!(draft.mention_user_ids, vec![user(0), user(1)]);
    }

    #[test]
    fn refuses_empty_long_and_over_mentioned_messages() {
        let l = limits();
        assert!(
            Draft {
                content: "  ".into(),
                ..Default::default()
            }
            .validated(&l)
            .is_err()
        );
        assert!(
            Draft {
                content: "x".repeat(4001),
                ..Default::default()
            }
            .validated(&l)
            .is_err()
        );
        let many = (0..51)
            .map(|i| format!("{}{:02}", "A".repeat(41), i))
            .collect();
        assert!(
            Draft {
                content: "x".into(),
                mention_user_ids: many,
                ..Default::default()
            }
            .validated(&l)
            .is_err()
        );
    }

    #[test]
    fn attachments_are_file_ids() {
        let draft = |id: &str| Draft {
            content: "look".into(),
            attachment_file_ids: vec![id.into()],
            ..Default::default()
        };
        assert!(
            draft("0192f5e4-8a3b-7c2d-9e1f-123456789abc.png")
                .validated(&limits())
                .is_ok()
        );
        for bad in [
            "../etc/passwd",
            "0192f5e4.png",
            "0192f5e4-8a3b-7c2d-9e1f-123456789abc",
        ] {
            assert!(draft(bad).validated(&limits()).is_err(), "{bad}");
        }
    }

    #[test]
    fn emoji_are_short_tokens() {
        assert!(emoji("👍").is_ok());
        assert!(emoji(":party:").is_ok());
        assert!(emoji("").is_err());
        assert!(emoji("a b").is_err());
        assert!(emoji(&"x".repeat(33)).is_err());
    }
}
