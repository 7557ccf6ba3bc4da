//! The push-relay's command-line settings.

use std::{path::PathBuf, time::Duration};

#[derive(Debug, Clone, clap::Args)]
pub struct PushArgs {
    /// Push endpoint hosts allowed http and private addresses (comma-separated; development
    /// only, e.g. a local UnifiedPush distributor).
    #[arg(long, env = "MZCHAT_PUSH_ALLOW_ENDPOINT_HOSTS", value_delimiter = ',')]
    pub push_allow_endpoint_hosts: Vec<String>,
    /// How long a push is worth delivering, in seconds (RFC 8030 TTL; 1-86400): this server's
    /// retries and its relay jobs to other servers stop after it, and it is the TTL the push
    /// service (or FCM, on Android) is given.
    #[arg(long, env = "MZCHAT_PUSH_TTL_SECS", default_value_t = 600)]
    pub push_ttl_secs: u64,
    /// Members read per page of a MENTION_EVERYONE fan-out (1-1000).
    #[arg(long, env = "MZCHAT_PUSH_FANOUT_PAGE", default_value_t = 500)]
    pub push_fanout_page: u32,
    /// A Google service account's JSON key, which lets this server deliver through FCM HTTP v1.
    /// Without it, devices cannot register FCM tokens.
    #[arg(long, env = "MZCHAT_FCM_CREDENTIALS")]
    pub fcm_credentials: Option<PathBuf>,
    /// Where FCM HTTP v1 answers (a different URL only for testing).
    #[arg(long, env = "MZCHAT_FCM_BASE_URL", default_value = crate::fcm::DEFAULT_BASE_URL)]
    pub fcm_base_url: String,
}

/// FCM credentials, read at startup.
#[derive(Clone)]
pub struct FcmSettings {
    /// Holds the private key: never printed.
    pub service_account_json: Vec<u8>,
    pub base_url: String,
}

impl std::fmt::Debug for FcmSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FcmSettings")
            .field("service_account_json", &"<redacted>")
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// A duration in milliseconds as the store keeps them.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The validated settings.
#[derive(Debug, Clone)]
pub struct PushSettings {
    pub allowed_endpoint_hosts: Vec<String>,
    pub ttl: Duration,
    pub fanout_page: u32,
    pub fcm: Option<FcmSettings>,
}

impl PushArgs {
    pub fn validate(self) -> Result<PushSettings, String> {
        if !(1..=86_400).contains(&self.push_ttl_secs) {
            return Err("--push-ttl-secs must be between 1 and 86400".into());
        }
        if !(1..=1000).contains(&self.push_fanout_page) {
            return Err("--push-fanout-page must be between 1 and 1000".into());
        }
        let fcm = match self.fcm_credentials {
            None => None,
            Some(path) => {
                let json = std::fs::read(&path)
                    .map_err(|e| format!("--fcm-credentials {}: {e}", path.display()))?;
                // Parsed here too, so a bad key stops the start, not the first push.
                crate::fcm::Fcm::from_service_account(&json, &self.fcm_base_url)
                    .map_err(|e| format!("--fcm-credentials {}: {e}", path.display()))?;
                Some(FcmSettings {
                    service_account_json: json,
                    base_url: self.fcm_base_url,
                })
            }
        };
        Ok(PushSettings {
            allowed_endpoint_hosts: self.push_allow_endpoint_hosts,
            ttl: Duration::from_secs(self.push_ttl_secs),
            fanout_page: self.push_fanout_page,
            fcm,
        })
    }
}
