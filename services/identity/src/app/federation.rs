//! Identity's part in federation (PROTOCOL.md sections 7 and 8): answering other servers about
//! users homed here, applying what home servers answer about shadow accounts, and signing the
//! calls federation-sync makes on this server's behalf.

use ed25519_dalek::Signer;
use mzchat_platform::{Origin, federation::s2s};
use mzchat_proto::{
    common::{PushDelegationToken, SignedStatement},
    federation::{
        FederationResult, PropagateBanRequest, UpdateHomeServerRequest, UserVerified,
        VerifyUserResponse, federation_result::Result as Outcome,
    },
    signing,
};
use sea_orm::TransactionTrait;

use super::IdentityApp;
use crate::{
    domain::{
        IdentityError, Result,
        account::{AccountKind, Verification},
        invalid,
        login::{parse_user_id, verify_revocation},
        unix_now,
    },
    events,
    grpc::convert,
    keys::KeyPurpose,
    store::{self, federation::HomeProfile},
};

const DELEGATION_LIFETIME_SECS: i64 = 30 * 86_400;
/// Shadow accounts seen this recently are refreshed...
const REFRESH_SEEN_WITHIN_MS: i64 = 30 * 86_400_000;
/// ...this often.
const REFRESH_EVERY_MS: i64 = 86_400_000;

fn not_hosted(user_id: &str) -> IdentityError {
    IdentityError::NotFound(format!("user {user_id} is not homed on this server"))
}

fn bounded(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// The signed server calls identity signs must look like calls of this protocol.
fn check_signing_request(method_path: &str, request_sha256: &[u8]) -> Result<()> {
    if !method_path.starts_with("/mzchat.") || method_path.len() > 200 {
        return Err(invalid("method_path must be an mzchat gRPC method path"));
    }
    if request_sha256.len() != 32 {
        return Err(invalid("request_sha256 must be 32 bytes"));
    }
    Ok(())
}

impl IdentityApp {
    fn me(&self) -> &Origin {
        &self.config.server.origin
    }

    /// Signs an outbound server call for federation-sync (internal).
    pub fn sign_server_call(
        &self,
        method_path: &str,
        destination: &str,
        timestamp: i64,
        request_sha256: &[u8],
    ) -> Result<(String, String, Vec<u8>)> {
        check_signing_request(method_path, request_sha256)?;
        Origin::parse(destination, self.config.server.insecure_dev)
            .map_err(|e| invalid(format!("destination: {e}")))?;
        if timestamp.abs_diff(unix_now()) > s2s::MAX_SKEW_SECS.unsigned_abs() {
            return Err(invalid("timestamp is too far from this server's clock"));
        }
        let (key_id, key) = self
            .keys
            .signer(KeyPurpose::Server)
            .ok_or_else(|| IdentityError::Unavailable("no server key loaded yet".into()))?;
        let input = s2s::signing_input(method_path, destination, timestamp, request_sha256);
        Ok((
            self.me().to_string(),
            key_id,
            key.sign(&input).to_bytes().to_vec(),
        ))
    }

    /// VerifyUser from `caller`: the authoritative record and a push delegation token for it.
    pub async fn verify_user_for(
        &self,
        caller: &Origin,
        user_id: &str,
    ) -> Result<VerifyUserResponse> {
        parse_user_id(user_id)?;
        let account = store::accounts::find(&self.db, user_id)
            .await?
            .filter(|a| a.kind == AccountKind::Local)
            .ok_or_else(|| not_hosted(user_id))?;
        if account.home_server != self.me().as_str() {
            return Err(IdentityError::HomeserverMoved {
                new_homeserver: account.home_server,
            });
        }
        let revocations = store::federation::revocation_statements(&self.db, user_id)
            .await?
            .into_iter()
            .map(|(body, signature)| SignedStatement { body, signature })
            .collect();
        let now = unix_now();
        let delegation = store::federation::delegation_for(
            &self.db,
            user_id,
            caller.as_str(),
            now,
            DELEGATION_LIFETIME_SECS,
        )
        .await?;
        let (key_id, key) = self
            .keys
            .signer(KeyPurpose::Server)
            .ok_or_else(|| IdentityError::Unavailable("no server key loaded yet".into()))?;
        let token = PushDelegationToken {
            user_id: user_id.to_owned(),
            audience: caller.to_string(),
            issuer: self.me().to_string(),
            issued_at: convert::timestamp_s(delegation.issued_at),
            expires_at: convert::timestamp_s(delegation.expires_at),
            token_id: delegation.token_id,
            key_id,
        };
        Ok(VerifyUserResponse {
            profile: Some(convert::profile(
                &account,
                &self.config.server.assets_origin,
            )),
            home_server: self.me().to_string(),
            revocations,
            push_delegation_token: Some(signing::sign(
                &key,
                signing::PUSH_DELEGATION_TOKEN,
                &token,
            )),
        })
    }

    /// UpdateHomeServer from `caller`: the user moved to `caller` (PROTOCOL.md section 8).
    pub async fn update_home_server(
        &self,
        caller: &Origin,
        request: &UpdateHomeServerRequest,
    ) -> Result<()> {
        let root = parse_user_id(&request.user_id)?;
        let input =
            signing::migration_signing_input(&request.new_homeserver, request.migration_timestamp);
        let signature = ed25519_dalek::Signature::from_slice(&request.migration_signature)
            .map_err(|_| {
                IdentityError::PermissionDenied("migration_signature is malformed".into())
            })?;
        root.verify_strict(&input, &signature).map_err(|_| {
            IdentityError::PermissionDenied(
                "migration signature does not verify under the user's root key".into(),
            )
        })?;
        if request.new_homeserver != caller.as_str() {
            return Err(IdentityError::PermissionDenied(format!(
                "only the new home server may announce a migration; {caller} is not {}",
                request.new_homeserver
            )));
        }
        let account = store::accounts::find(&self.db, &request.user_id)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("no user {} here", request.user_id)))?;
        let now_ms = mzchat_platform::db::now_millis();
        let txn = self.db.begin().await?;
        let applied = store::federation::migration_timestamp(&txn, &request.user_id).await?;
        if applied.is_some_and(|ts| request.migration_timestamp <= ts) {
            tracing::info!(user_id = %request.user_id, "migration not newer than the one applied; ignored");
            return Ok(());
        }
        let (kind, verification) = match account.kind {
            // Homed here until now: it moved away (logins answer HOMESERVER_MOVED from now on).
            AccountKind::Local => (AccountKind::Local, Verification::Verified),
            // Known here as a shadow: ask the new home server to confirm.
            AccountKind::Shadow => (AccountKind::Shadow, Verification::Pending),
        };
        store::federation::move_home(
            &txn,
            &request.user_id,
            caller.as_str(),
            kind,
            verification,
            Some(request.migration_timestamp),
            now_ms,
        )
        .await?;
        if kind == AccountKind::Shadow {
            self.outbox
                .enqueue(
                    &txn,
                    events::verify_user_job(&request.user_id, caller.as_str()),
                )
                .await?;
        }
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(user_id = %request.user_id, new_homeserver = %caller, "home server moved");
        Ok(())
    }

    /// PropagateBan from `caller`: recorded for the user; with no membership left there, the
    /// delegation tokens issued to `caller` for the user are revoked.
    pub async fn receive_ban(&self, caller: &Origin, request: &PropagateBanRequest) -> Result<()> {
        parse_user_id(&request.user_id)?;
        if request.guild_id.is_empty() || request.guild_id.len() > 64 {
            return Err(invalid("guild_id must be 1-64 characters"));
        }
        let banned_at = request
            .banned_at
            .map(|t| t.seconds)
            .ok_or_else(|| invalid("banned_at is required"))?;
        store::accounts::find(&self.db, &request.user_id)
            .await?
            .filter(|a| a.kind == AccountKind::Local && a.home_server == self.me().as_str())
            .ok_or_else(|| not_hosted(&request.user_id))?;
        let txn = self.db.begin().await?;
        let notice = store::federation::BanNotice {
            user_id: &request.user_id,
            origin: caller.as_str(),
            guild_id: &request.guild_id,
            guild_name: &bounded(&request.guild_name, 100),
            reason: &bounded(&request.reason, 512),
            banned_at,
        };
        let new =
            store::federation::record_ban(&txn, &notice, mzchat_platform::db::now_millis()).await?;
        let revoked = if request.remaining_memberships == 0 {
            store::federation::revoke_delegations(
                &txn,
                &request.user_id,
                caller.as_str(),
                unix_now(),
            )
            .await?
        } else {
            0
        };
        txn.commit().await?;
        if new {
            tracing::info!(user_id = %request.user_id, origin = %caller, guild_id = %request.guild_id, revoked, "ban notification received");
        }
        Ok(())
    }

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
                store::federation::move_home(
                    &txn,
                    user_id,
                    &moved.new_homeserver,
                    AccountKind::Shadow,
                    Verification::Pending,
                    None,
                    now_ms,
                )
                .await?;
                tracing::info!(%user_id, new_homeserver = %moved.new_homeserver, "shadow account's home server moved");
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
