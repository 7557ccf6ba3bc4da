//! Identity's answers to other servers (PROTOCOL.md sections 7 and 8) about users homed here,
//! and the signing of the calls federation-sync makes on this server's behalf.

use ed25519_dalek::Signer;
use mzchat_platform::{Origin, federation::s2s};
use mzchat_proto::{
    common::{PushDelegationToken, SignedStatement},
    federation::{PropagateBanRequest, UpdateHomeServerRequest, VerifyUserResponse},
    signing,
};
use sea_orm::TransactionTrait;

use super::IdentityApp;
use crate::{
    domain::{
        IdentityError, Result,
        account::{AccountKind, Verification},
        invalid,
        login::parse_user_id,
        unix_now,
    },
    events,
    grpc::convert,
    keys::KeyPurpose,
    store::{self, federation::Migration},
};

const DELEGATION_LIFETIME_SECS: i64 = 30 * 86_400;

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

/// Checks K_id's signature over a move (`new_home|timestamp`, PROTOCOL.md section 8).
pub(super) fn verify_move(user_id: &str, migration: &Migration<'_>) -> Result<()> {
    let root = parse_user_id(user_id)?;
    let input = signing::migration_signing_input(migration.new_home, migration.timestamp);
    let signature = ed25519_dalek::Signature::from_slice(migration.signature)
        .map_err(|_| IdentityError::PermissionDenied("migration_signature is malformed".into()))?;
    root.verify_strict(&input, &signature).map_err(|_| {
        IdentityError::PermissionDenied(
            "migration signature does not verify under the user's root key".into(),
        )
    })
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
        self.hosted_here(user_id).await?;
        let account = store::accounts::find(&self.db, user_id)
            .await?
            .ok_or_else(|| not_hosted(user_id))?;
        let revocations = store::federation::revocation_statements(&self.db, user_id)
            .await?
            .into_iter()
            .map(|(body, signature)| SignedStatement { body, signature })
            .collect();
        let push_delegation_token = self.delegation_token(user_id, caller).await?;
        Ok(VerifyUserResponse {
            profile: Some(convert::profile(
                &account,
                &self.config.server.assets_origin,
            )),
            home_server: self.me().to_string(),
            revocations,
            push_delegation_token,
        })
    }

    /// The push delegation token for `caller`, signed by the server key; none while a
    /// propagated ban suppresses it.
    async fn delegation_token(
        &self,
        user_id: &str,
        caller: &Origin,
    ) -> Result<Option<SignedStatement>> {
        let now = unix_now();
        if store::federation::delegation_suppressed(&self.db, user_id, caller.as_str(), now).await?
        {
            return Ok(None);
        }
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
        Ok(Some(signing::sign(
            &key,
            signing::PUSH_DELEGATION_TOKEN,
            &token,
        )))
    }

    /// Whether a delegation token still holds (push-relay asks before relaying a push).
    pub async fn check_delegation(
        &self,
        token_id: &str,
        user_id: &str,
        audience: &str,
    ) -> Result<bool> {
        let now = unix_now();
        if store::federation::delegation_suppressed(&self.db, user_id, audience, now).await? {
            return Ok(false);
        }
        Ok(store::federation::delegation_valid(&self.db, token_id, user_id, audience, now).await?)
    }

    /// UpdateHomeServer from `caller`: the user moved to `caller` (PROTOCOL.md section 8).
    pub async fn update_home_server(
        &self,
        caller: &Origin,
        request: &UpdateHomeServerRequest,
    ) -> Result<()> {
        let migration = Migration {
            new_home: &request.new_homeserver,
            timestamp: request.migration_timestamp,
            signature: &request.migration_signature,
        };
        verify_move(&request.user_id, &migration)?;
        if request.new_homeserver != caller.as_str() {
            return Err(IdentityError::PermissionDenied(format!(
                "only the new home server may announce a migration; {caller} is not {}",
                request.new_homeserver
            )));
        }
        let account = store::accounts::find(&self.db, &request.user_id)
            .await?
            .ok_or_else(|| IdentityError::NotFound(format!("no user {} here", request.user_id)))?;
        let (kind, verification) = match account.kind {
            // Homed here until now: it moved away (logins answer HOMESERVER_MOVED from now on).
            AccountKind::Local => (AccountKind::Local, Verification::Verified),
            // Known here as a shadow: ask the new home server to confirm.
            AccountKind::Shadow => (AccountKind::Shadow, Verification::Pending),
        };
        let now_ms = mzchat_platform::db::now_millis();
        let txn = self.db.begin().await?;
        let applied = store::federation::apply_migration(
            &txn,
            &request.user_id,
            &migration,
            kind,
            verification,
            now_ms,
        )
        .await?;
        if !applied {
            tracing::info!(user_id = %request.user_id, "migration not newer than the one applied; ignored");
            return Ok(());
        }
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

    /// A user homed here, or where they moved (HOMESERVER_MOVED with the migration's proof).
    async fn hosted_here(&self, user_id: &str) -> Result<()> {
        let account = store::accounts::find(&self.db, user_id)
            .await?
            .filter(|a| a.kind == AccountKind::Local)
            .ok_or_else(|| not_hosted(user_id))?;
        if account.home_server == self.me().as_str() {
            return Ok(());
        }
        Err(IdentityError::HomeserverMoved {
            new_homeserver: account.home_server,
            proof: store::federation::applied_migration(&self.db, user_id).await?,
        })
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
        self.hosted_here(&request.user_id).await?;
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
            // The token B holds ends now, and B gets none for as long as a token would live.
            let now = unix_now();
            store::federation::revoke_delegations(
                &txn,
                &request.user_id,
                caller.as_str(),
                now,
                now + DELEGATION_LIFETIME_SECS,
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
}
