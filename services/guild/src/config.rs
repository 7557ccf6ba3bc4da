//! Guild service settings.

use mzchat_platform::{LimitsArgs, ServerConfig};

#[derive(Debug, Clone, clap::Args)]
pub struct GuildArgs {
    /// URL of the identity service (session keys, internal session issuance); default in the
    /// one-process mode: this process.
    #[arg(long, env = "MZCHAT_IDENTITY_URL")]
    pub identity_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GuildConfig {
    pub server: ServerConfig,
    pub limits: LimitsArgs,
    pub identity_url: String,
    /// Where the media service's internal API answers (attachments are checked there); none:
    /// messages cannot carry attachments.
    pub media_internal_url: Option<String>,
    /// How long a user stays online after their last stream closed (15 s by the protocol).
    pub presence_grace: std::time::Duration,
}
