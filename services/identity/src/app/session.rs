//! Login, refresh, logout and internal issuance (PROTOCOL.md section 3).

use mzchat_proto::{
    common::{MigrationProof, ProfileHint, SignedStatement},
    federation::UpdateHomeServerJob,
    identity::AccountRegistered,
};
use sea_orm::TransactionTrait;

use super::{IdentityApp, hash_token};
use crate::{
    config::RegistrationPolicy,
    domain::{
        IdentityError, Result,
        account::{Account, AccountKind, Device, Profile, Verification, default_display_name},
        invalid,
        login::{self, CLOCK_SKEW_SECS, VerifiedCertificate, VerifiedMigration},
        unauthenticated, unix_now,
    },
    events,
    store::{self, accounts::NewAccount, sessions::Presented},
};

pub struct LoginInput {
    pub user_id: String,
    pub certificate: Option<SignedStatement>,
    pub proof: Option<SignedStatement>,
    pub profile_hint: Option<ProfileHint>,
    pub migration_proof: Option<MigrationProof>,
    pub registration_token: String,
}

#[derive(Debug, Clone)]
pub struct SessionTokens {
    pub access_token: String,
    /// Seconds since the epoch.
    pub access_expires_at: i64,
    pub refresh_token: String,
    /// Milliseconds since the epoch.
    pub refresh_expires_at_ms: i64,
}

const MAX_HINT_NAME_CHARS: usize = 64;
const MAX_HINT_URL_CHARS: usize = 2048;

fn profile_from_hint(user_id: &str, hint: Option<ProfileHint>) -> Profile {
    let hint = hint.unwrap_or_default();
    let name: String = hint
        .display_name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_HINT_NAME_CHARS)
        .collect();
    let url =
        if hint.avatar_url.len() <= MAX_HINT_URL_CHARS && hint.avatar_url.starts_with("https://") {
            hint.avatar_url
        } else {
            String::new()
        };
    Profile {
        display_name: if name.is_empty() {
            default_display_name(user_id)
        } else {
            name
        },
        avatar_url: url,
        avatar_color: hint.avatar_color.min(0xFF_FF_FF),
        ..Profile::default()
    }
}

impl IdentityApp {
    pub async fn login(&self, input: LoginInput) -> Result<(SessionTokens, Account)> {
        let now = unix_now();
        let server = &self.config.server;
        let cert = login::verify_certificate(
            &input.user_id,
            input.certificate.as_ref(),
            now,
            server.insecure_dev,
        )?;
        let nonce = login::verify_proof(&cert, input.proof.as_ref(), &server.origin, now)?;
        let migration = input
            .migration_proof
            .as_ref()
            .map(|proof| {
                login::verify_migration(&cert, proof, &server.origin, now, server.insecure_dev)
            })
            .transpose()?;
        // The replay cache is written first and on its own: a proof is spent even if the login
        // fails later.
        let nonce_key = format!(
            "{}{}",
            hex::encode(cert.device_key.as_bytes()),
            hex::encode(nonce)
        );
        if !store::sessions::remember_nonce(&self.db, nonce_key, now + 2 * CLOCK_SKEW_SECS).await? {
            return Err(unauthenticated(
                "login proof was already used; sign a new one",
            ));
        }
        if store::devices::revoked_at(&self.db, &cert.user_id, &cert.device_id)
            .await?
            .is_some()
        {
            return Err(unauthenticated("device certificate has been revoked"));
        }
        // Asked before anything is written: if the guild service cannot answer, nothing changes.
        let guilds = self.guild_claims(&cert.user_id).await?;

        let now_ms = mzchat_platform::db::now_millis();
        let txn = self.db.begin().await?;
        let (mut account, created) = match store::accounts::find(&txn, &cert.user_id).await? {
            Some(account) => (account, false),
            None => {
                self.create_account(
                    &txn,
                    &cert,
                    migration.is_some(),
                    input.profile_hint,
                    &input.registration_token,
                    now_ms,
                )
                .await?
            }
        };
        match &migration {
            Some(migration) => {
                // Becoming homed here is a registration, whatever the account was before.
                let homed_here = account.kind == AccountKind::Local
                    && account.home_server == server.origin.as_str();
                if !created && !homed_here {
                    self.check_registration(&input.registration_token)?;
                }
                account = self.migrate_here(&txn, account, migration, now_ms).await?;
            }
            None if !created => {
                if let Err(err) = self.check_existing(&account, &cert) {
                    if self.moved_elsewhere(&account, &cert) {
                        // Perhaps the user moved and this server has not heard: ask the home
                        // it knows, which answers with the move and its proof. The question is
                        // kept, the login is not.
                        self.recheck_home(&txn, &account, now_ms).await?;
                        txn.commit().await?;
                        self.outbox.wake();
                    }
                    return Err(err);
                }
            }
            None => {}
        }
        if !created {
            store::accounts::touch(&txn, &account.user_id, now_ms).await?;
        }
        let new_device = store::devices::record_certificate(&txn, &cert, now_ms).await?;
        if new_device && !created && account.kind == AccountKind::Shadow {
            // A device this server has not seen: ask the home server again at once.
            self.outbox
                .enqueue(
                    &txn,
                    events::verify_user_job(&account.user_id, &account.home_server),
                )
                .await?;
            store::federation::mark_refresh_queued(&txn, &account.user_id, now_ms).await?;
        }
        let family_id = uuid::Uuid::now_v7().to_string();
        let (refresh_token, refresh_expires_at_ms) = self
            .refresh_token(
                &txn,
                &family_id,
                &cert.user_id,
                &cert.device_id,
                cert.expires_at,
            )
            .await?;
        let (access_token, access_expires_at) = self.sign_access_token(
            &cert.user_id,
            &cert.device_id,
            &account.home_server,
            guilds,
            cert.expires_at,
        )?;
        txn.commit().await?;
        self.outbox.wake();
        tracing::info!(user_id = %cert.user_id, device_id = %cert.device_id, kind = account.kind.as_str(), "login");
        Ok((
            SessionTokens {
                access_token,
                access_expires_at,
                refresh_token,
                refresh_expires_at_ms,
            },
            account,
        ))
    }

    /// A shadow account whose user now presents a certificate naming another home.
    fn moved_elsewhere(&self, account: &Account, cert: &VerifiedCertificate) -> bool {
        account.kind == AccountKind::Shadow && cert.home_server.as_str() != account.home_server
    }

    /// Queues VerifyUser to the account's recorded home, unless a question asked in the last
    /// minute is still unanswered.
    async fn recheck_home(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        account: &Account,
        now_ms: i64,
    ) -> Result<()> {
        if store::federation::refresh_outstanding(txn, &account.user_id, now_ms - 60_000).await? {
            return Ok(());
        }
        self.outbox
            .enqueue(
                txn,
                events::verify_user_job(&account.user_id, &account.home_server),
            )
            .await?;
        store::federation::mark_refresh_queued(txn, &account.user_id, now_ms).await?;
        Ok(())
    }

    fn check_existing(&self, account: &Account, cert: &VerifiedCertificate) -> Result<()> {
        let origin = self.config.server.origin.as_str();
        if account.kind == AccountKind::Local && account.home_server != origin {
            return Err(IdentityError::HomeserverMoved {
                new_homeserver: account.home_server.clone(),
                proof: None,
            });
        }
        if self.moved_elsewhere(account, cert) {
            return Err(IdentityError::FailedPrecondition(format!(
                "certificate names home server {} but this server knows the account as homed on \
                 {}; it is asking {} again, so try again shortly if you moved",
                cert.home_server, account.home_server, account.home_server
            )));
        }
        if cert.home_server.as_str() != account.home_server {
            return Err(unauthenticated(format!(
                "certificate names home server {} but this account is homed on {}",
                cert.home_server, account.home_server
            )));
        }
        if account.verification == Verification::Rejected {
            return Err(IdentityError::PermissionDenied(
                "the user's home server does not recognise this account".into(),
            ));
        }
        Ok(())
    }

    async fn create_account(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        cert: &VerifiedCertificate,
        migrating_here: bool,
        hint: Option<ProfileHint>,
        registration_token: &str,
        now_ms: i64,
    ) -> Result<(Account, bool)> {
        let local = migrating_here || cert.home_server == self.config.server.origin;
        if local {
            self.check_registration(registration_token)?;
        }
        let mut profile = profile_from_hint(&cert.user_id, hint);
        if local {
            // A local account's avatar is a file of this server, set with UpdateProfile.
            profile.avatar_url.clear();
        }
        let inserted = store::accounts::insert(
            txn,
            NewAccount {
                user_id: &cert.user_id,
                kind: if local {
                    AccountKind::Local
                } else {
                    AccountKind::Shadow
                },
                home_server: if local {
                    self.config.server.origin.as_str()
                } else {
                    cert.home_server.as_str()
                },
                verification: if local {
                    Verification::Verified
                } else {
                    Verification::Pending
                },
                profile,
            },
            now_ms,
        )
        .await?;
        let Some(account) = inserted else {
            // A concurrent login created it first: carry on with theirs.
            let account = store::accounts::find(txn, &cert.user_id)
                .await?
                .ok_or_else(|| {
                    IdentityError::Internal("account vanished after a conflict".into())
                })?;
            return Ok((account, false));
        };
        let registered = AccountRegistered {
            user_id: account.user_id.clone(),
            home_server: account.home_server.clone(),
            shadow: !local,
        };
        self.outbox
            .enqueue(txn, events::account_registered(&registered))
            .await?;
        self.publish_profile(txn, &account).await?;
        if !local {
            self.outbox
                .enqueue(
                    txn,
                    events::verify_user_job(&account.user_id, &account.home_server),
                )
                .await?;
        }
        Ok((account, true))
    }

    /// Makes this server the user's home (PROTOCOL.md section 8) and queues UpdateHomeServer to
    /// each target. A proof not newer than the last migration applied moves nothing.
    async fn migrate_here(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        account: Account,
        migration: &VerifiedMigration,
        now_ms: i64,
    ) -> Result<Account> {
        let me = self.config.server.origin.as_str();
        let moved = store::federation::Migration {
            new_home: me,
            timestamp: migration.timestamp,
            signature: &migration.signature,
        };
        let applied = store::federation::apply_migration(
            txn,
            &account.user_id,
            &moved,
            AccountKind::Local,
            Verification::Verified,
            now_ms,
        )
        .await?;
        if !applied {
            return Err(IdentityError::FailedPrecondition(
                "migration proof is not newer than the last migration of this account".into(),
            ));
        }
        for target in &migration.targets {
            let job = UpdateHomeServerJob {
                user_id: account.user_id.clone(),
                new_homeserver: me.to_owned(),
                migration_timestamp: migration.timestamp,
                migration_signature: migration.signature.clone(),
            };
            self.outbox
                .enqueue(txn, events::update_home_server_job(target.as_str(), job))
                .await?;
        }
        tracing::info!(user_id = %account.user_id, from = %account.home_server, targets = migration.targets.len(), "account migrated to this server");
        store::accounts::find(txn, &account.user_id)
            .await?
            .ok_or_else(|| IdentityError::Internal("account vanished during migration".into()))
    }

    fn check_registration(&self, token: &str) -> Result<()> {
        match self.config.registration {
            RegistrationPolicy::Open => Ok(()),
            RegistrationPolicy::Closed => Err(IdentityError::PermissionDenied(
                "registration is closed on this server".into(),
            )),
            RegistrationPolicy::Token if token.is_empty() => Err(IdentityError::PermissionDenied(
                "registration on this server needs a registration token".into(),
            )),
            RegistrationPolicy::Token => {
                if self
                    .config
                    .registration_tokens
                    .iter()
                    .any(|t| t.expose() == token)
                {
                    Ok(())
                } else {
                    Err(IdentityError::PermissionDenied(
                        "registration token is not valid".into(),
                    ))
                }
            }
        }
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<SessionTokens> {
        if refresh_token.is_empty() || refresh_token.len() > 128 {
            return Err(IdentityError::InvalidArgument(
                "refresh_token is malformed".into(),
            ));
        }
        let token_hash = hash_token(refresh_token);
        // Everything that needs no write, and the guild service's answer, comes first, so the
        // transaction that spends the token is short.
        let (user_id, device_id) = store::sessions::holder(&self.db, &token_hash)
            .await?
            .ok_or_else(|| unauthenticated("refresh token is not valid"))?;
        let (account, device) = self.session_standing(&user_id, &device_id).await?;
        let guilds = self.guild_claims(&user_id).await?;

        let now_ms = mzchat_platform::db::now_millis();
        let txn = self.db.begin().await?;
        let family_id = match store::sessions::spend(&txn, &token_hash, now_ms).await? {
            Presented::Fresh { family_id, .. } => family_id,
            Presented::Reused => {
                // Commit the chain's revocation before answering.
                txn.commit().await?;
                tracing::warn!(%user_id, %device_id, "refresh token reuse detected; session revoked");
                return Err(unauthenticated(
                    "refresh token was already used; the session has been revoked",
                ));
            }
            Presented::Unknown => return Err(unauthenticated("refresh token is not valid")),
            Presented::Expired => {
                return Err(unauthenticated("refresh token has expired; log in again"));
            }
            Presented::Revoked => {
                return Err(unauthenticated("session has been revoked; log in again"));
            }
        };
        let not_after = device.certificate_expires_at;
        let (refresh_token, refresh_expires_at_ms) = self
            .refresh_token(&txn, &family_id, &user_id, &device_id, not_after)
            .await?;
        store::devices::touch(&txn, &user_id, &device_id, now_ms).await?;
        store::accounts::touch(&txn, &user_id, now_ms).await?;
        txn.commit().await?;
        let (access_token, access_expires_at) = self.sign_access_token(
            &user_id,
            &device_id,
            &account.home_server,
            guilds,
            not_after,
        )?;
        Ok(SessionTokens {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at_ms,
        })
    }

    /// The account and device behind a session, refused when the device was revoked, its
    /// certificate expired, or the home server rejected the account.
    async fn session_standing(&self, user_id: &str, device_id: &str) -> Result<(Account, Device)> {
        let device = store::devices::find(&self.db, user_id, device_id)
            .await?
            .ok_or_else(|| unauthenticated("this device is not known here; log in again"))?;
        if device.revoked_at.is_some() {
            return Err(unauthenticated("this device has been revoked"));
        }
        if device.certificate_expires_at <= unix_now() {
            return Err(unauthenticated(
                "the device certificate has expired; log in with a new one",
            ));
        }
        let account = store::accounts::find(&self.db, user_id)
            .await?
            .ok_or_else(|| unauthenticated("account no longer exists"))?;
        if account.verification == Verification::Rejected {
            return Err(IdentityError::PermissionDenied(
                "the user's home server does not recognise this account".into(),
            ));
        }
        Ok((account, device))
    }

    pub async fn logout(&self, refresh_token: &str) -> Result<()> {
        if refresh_token.len() > 128 {
            return Err(invalid("refresh_token is malformed"));
        }
        let now_ms = mzchat_platform::db::now_millis();
        if let Some(family) =
            store::sessions::family_of(&self.db, &hash_token(refresh_token)).await?
        {
            store::sessions::revoke_family(&self.db, &family, now_ms).await?;
        }
        Ok(())
    }

    /// A fresh access token for a device that already has a session here (internal).
    pub async fn issue_session(&self, user_id: &str, device_id: &str) -> Result<(String, i64)> {
        let (account, device) = self.session_standing(user_id, device_id).await?;
        let guilds = self.guild_claims(user_id).await?;
        self.sign_access_token(
            user_id,
            device_id,
            &account.home_server,
            guilds,
            device.certificate_expires_at,
        )
    }
}
