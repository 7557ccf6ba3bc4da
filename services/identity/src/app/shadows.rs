//! Shadow accounts: applying what their home servers answer (federation-sync's results), and
//! asking again every day for the ones seen recently.

use mzchat_proto::federation::{
    FederationResult, UserVerified, federation_result::Result as Outcome,
};
use sea_orm::TransactionTrait;

use super::{IdentityApp, federation::verify_move};
use crate::{
    domain::{
        Result,
        account::{AccountKind, Verification},
        login::verify_revocation,
    },
    events,
    grpc::convert,
    store::{
        self,
        federation::{HomeProfile, Migration},
    },
};

/// Shadow accounts seen this recently are refreshed...
const REFRESH_SEEN_WITHIN_MS: i64 = 30 * 86_400_000;
/// ...this often.
const REFRESH_EVERY_MS: i64 = 86_400_000;

fn bounded(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

impl IdentityApp {
    /// Applies a home server's answer about a shadow account (from federation-sync's results).
    /// Answers from a server that is no longer the account's home are ignored.
    pub async fn apply_federation_result(&self, result: &FederationResult) -> Result<()> {
        let Some(outcome) = &result.result else {
            return Ok(());
        };
        let user_id = match outcome {
            Outcome::UserVerified(v) => &v.user_id,
            Outcome::UserRejected(r) => &r.user_id,
            Outcome::HomeServerMoved(m) => &m.user_id,
        };
        let Some(account) = store::accounts::find(&self.db, user_id).await? else {
            return Ok(());
        };
        if account.kind != AccountKind::Shadow || account.home_server != result.origin {
            tracing::debug!(%user_id, origin = %result.origin, "federation result for a former home ignored");
            return Ok(());
        }
        let now_ms = mzchat_platform::db::now_millis();
        let txn = self.db.begin().await?;
        match outcome {
            Outcome::UserVerified(verified) => self.apply_verified(&txn, verified, now_ms).await?,
            Outcome::UserRejected(_) => {
                store::federation::set_verification(&txn, user_id, Verification::Rejected, now_ms)
                    .await?;
                for device in store::devices::list(&txn, user_id).await? {
                    store::sessions::revoke_device(&txn, user_id, &device.device_id, now_ms)
                        .await?;
                    let event = mzchat_proto::identity::DeviceRevoked {
                        user_id: user_id.clone(),
                        device_id: device.device_id,
                        revoked_at: convert::timestamp_s(now_ms / 1000),
                    };
                    self.outbox
                        .enqueue(&txn, events::device_revoked(&event))
                        .await?;
                }
                tracing::warn!(%user_id, home = %result.origin, "home server does not know this user; shadow account rejected");
            }
            Outcome::HomeServerMoved(moved) => {
                // Only a move the user signed, and newer than any this server knows.
                let migration = Migration {
                    new_home: &moved.new_homeserver,
                    timestamp: moved.migration_timestamp,
                    signature: &moved.migration_signature,
                };
                if let Err(err) = verify_move(user_id, &migration) {
                    tracing::warn!(%user_id, origin = %result.origin, error = %err, "home server reported a move without a valid proof; ignored");
                    return Ok(());
                }
                let applied = store::federation::apply_migration(
                    &txn,
                    user_id,
                    &migration,
                    AccountKind::Shadow,
                    Verification::Pending,
                    now_ms,
                )
                .await?;
                if applied {
                    tracing::info!(%user_id, new_homeserver = %moved.new_homeserver, "shadow account's home server moved");
                }
            }
        }
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    async fn apply_verified(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        verified: &UserVerified,
        now_ms: i64,
    ) -> Result<()> {
        let profile = verified.profile.clone().unwrap_or_default();
        let home = HomeProfile {
            display_name: bounded(&profile.display_name, 64),
            bio: bounded(&profile.bio, 512),
            avatar_url: if self.acceptable_avatar_url(&profile.avatar_url) {
                profile.avatar_url
            } else {
                String::new()
            },
            avatar_color: profile.avatar_color.min(0xFF_FF_FF),
            presence_preference: profile.presence_preference,
        };
        let Some(account) =
            store::federation::apply_verified(txn, &verified.user_id, &home, now_ms).await?
        else {
            return Ok(());
        };
        self.publish_profile(txn, &account).await?;
        let now = now_ms / 1000;
        for statement in &verified.revocations {
            match verify_revocation(&verified.user_id, Some(statement), now) {
                Ok(revocation) => {
                    self.apply_revocation(txn, &revocation, now_ms).await?;
                }
                Err(err) => {
                    tracing::warn!(user_id = %verified.user_id, error = %err, "home server sent a revocation that does not verify; ignored");
                }
            }
        }
        tracing::info!(user_id = %verified.user_id, "shadow account verified");
        Ok(())
    }

    /// An avatar URL from another server: absolute https (http only in development), bounded.
    fn acceptable_avatar_url(&self, url: &str) -> bool {
        let scheme_ok = url.starts_with("https://")
            || (self.config.server.insecure_dev && url.starts_with("http://"));
        scheme_ok && url.len() <= 2048
    }

    /// Queues VerifyUser for shadow accounts seen in the last 30 days and not confirmed in the
    /// last 24 hours; returns how many.
    pub async fn refresh_shadows(&self, limit: u64) -> Result<usize> {
        let now_ms = mzchat_platform::db::now_millis();
        let due = store::federation::shadows_due(
            &self.db,
            now_ms - REFRESH_SEEN_WITHIN_MS,
            now_ms - REFRESH_EVERY_MS,
            limit,
        )
        .await?;
        for (user_id, home) in &due {
            let txn = self.db.begin().await?;
            store::federation::mark_refresh_queued(&txn, user_id, now_ms).await?;
            self.outbox
                .enqueue(&txn, events::verify_user_job(user_id, home))
                .await?;
            txn.commit().await?;
        }
        if !due.is_empty() {
            self.outbox.wake();
        }
        Ok(due.len())
    }
}
