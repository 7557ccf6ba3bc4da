//! Accounts as the identity service sees them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// Homed on this server.
    Local,
    /// Homed elsewhere; a copy kept here.
    Shadow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Pending,
    Verified,
    Rejected,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Local => "local",
            AccountKind::Shadow => "shadow",
        }
    }

    pub fn parse(text: &str) -> Self {
        if text == "shadow" {
            AccountKind::Shadow
        } else {
            AccountKind::Local
        }
    }
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Pending => "pending",
            Verification::Verified => "verified",
            Verification::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "pending" => Verification::Pending,
            "rejected" => Verification::Rejected,
            _ => Verification::Verified,
        }
    }
}

/// The profile this server shows for an account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub display_name: String,
    pub bio: String,
    /// File id on this server's media service (local accounts).
    pub avatar_file_id: String,
    /// Absolute avatar URL from the home server (shadow accounts).
    pub avatar_url: String,
    pub avatar_color: u32,
    /// `mzchat.common.v1.PresencePreference` value.
    pub presence_preference: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: String,
    pub kind: AccountKind,
    pub home_server: String,
    pub verification: Verification,
    pub is_profile_synced: bool,
    pub profile: Profile,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub device_id: String,
    pub public_key: Vec<u8>,
    /// Seconds since the epoch.
    pub certificate_expires_at: i64,
    /// Milliseconds since the epoch.
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub revoked_at: Option<i64>,
}

/// A display name for a new account that brought no hint: the start of its user id.
pub fn default_display_name(user_id: &str) -> String {
    user_id.chars().take(8).collect()
}
