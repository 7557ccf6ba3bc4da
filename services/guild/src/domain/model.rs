//! What the guild service stores, as domain types. Times are milliseconds since the epoch.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guild {
    pub id: String,
    pub name: String,
    pub icon_file_id: String,
    pub owner_id: String,
    pub permission_version: u64,
    pub member_count: u64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: String,
    pub guild_id: String,
    pub name: String,
    pub topic: String,
    pub position: u32,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    pub guild_id: String,
    pub name: String,
    pub permissions: u64,
    pub weight: u32,
    pub color: u32,
    pub is_everyone: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub guild_id: String,
    pub user_id: String,
    pub home_server: String,
    /// Roles other than `@everyone`.
    pub role_ids: Vec<String>,
    pub joined_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub guild_id: String,
    pub user_id: String,
    pub reason: String,
    pub banned_by: String,
    pub banned_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub token: String,
    pub guild_id: String,
    pub channel_id: String,
    pub creator_id: String,
    pub uses: u32,
    /// 0: unlimited.
    pub max_uses: u32,
    pub expires_at: i64,
    pub revoked: bool,
}

/// A file of this server's media service attached to a message, as it was when sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_id: String,
    pub content_type: String,
    pub size: u64,
    pub file_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub guild_id: String,
    pub channel_id: String,
    pub author_id: String,
    pub content: String,
    pub mention_user_ids: Vec<String>,
    pub mention_everyone: bool,
    pub attachments: Vec<Attachment>,
    pub nonce: Option<String>,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub pinned: bool,
    pub reactions: Vec<ReactionSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionSummary {
    pub emoji: String,
    pub count: u32,
    /// Whether the viewer is among the reactors.
    pub me: bool,
}

/// One guild of a user, for token claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub guild_id: String,
    pub role_ids: Vec<String>,
    pub permission_version: u64,
}
