//! Identity service settings (flags with `MZCHAT_*` env twins).

use std::time::Duration;

use mzchat_platform::{LimitsArgs, Secret, ServerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistrationPolicy {
    /// Anyone whose certificate names this server as home may register.
    Open,
    /// Registration needs one of the configured registration tokens.
    Token,
    /// No new local accounts.
    Closed,
}

#[derive(Debug, Clone, clap::Args)]
pub struct IdentityArgs {
    /// Who may register a local account.
    #[arg(long, env = "MZCHAT_REGISTRATION", value_enum, default_value = "open")]
    pub registration: RegistrationPolicy,
    /// Registration tokens accepted under `--registration token` (comma separated).
    #[arg(long, env = "MZCHAT_REGISTRATION_TOKENS", value_delimiter = ',')]
    pub registration_tokens: Vec<Secret>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "MZCHAT_ACCESS_TOKEN_TTL_SECS", default_value_t = 3600)]
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens, in days.
    #[arg(long, env = "MZCHAT_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30)]
    pub refresh_token_ttl_days: u64,
    /// Age after which server and session keys are rotated, in days.
    #[arg(long, env = "MZCHAT_KEY_ROTATION_DAYS", default_value_t = 90)]
    pub key_rotation_days: u64,
}

/// Validated identity settings.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    pub server: ServerConfig,
    pub limits: LimitsArgs,
    pub registration: RegistrationPolicy,
    pub registration_tokens: Vec<Secret>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub key_rotation: Duration,
}

impl IdentityArgs {
    pub fn validate(
        &self,
        server: ServerConfig,
        limits: LimitsArgs,
    ) -> Result<IdentityConfig, String> {
        if self.registration == RegistrationPolicy::Token && self.registration_tokens.is_empty() {
            return Err("--registration token needs --registration-tokens".into());
        }
        if !(60..=86_400).contains(&self.access_token_ttl_secs) {
            return Err("--access-token-ttl-secs must be between 60 and 86400".into());
        }
        if !(1..=365).contains(&self.refresh_token_ttl_days) {
            return Err("--refresh-token-ttl-days must be between 1 and 365".into());
        }
        if self.key_rotation_days == 0 {
            return Err("--key-rotation-days must be at least 1".into());
        }
        const DAY: u64 = 86_400;
        Ok(IdentityConfig {
            server,
            limits,
            registration: self.registration,
            registration_tokens: self.registration_tokens.clone(),
            access_token_ttl: Duration::from_secs(self.access_token_ttl_secs),
            refresh_token_ttl: Duration::from_secs(self.refresh_token_ttl_days * DAY),
            key_rotation: Duration::from_secs(self.key_rotation_days * DAY),
        })
    }
}
