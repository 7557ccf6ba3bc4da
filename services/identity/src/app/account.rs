//! Accounts, profiles, per-user settings and devices.

use mzchat_proto::{
    common::SignedStatement,
    identity::{DeviceRevoked, ProfileUpdated},
};
use sea_orm::TransactionTrait;

use super::{Caller, IdentityApp};
use crate::{
    domain::{
        IdentityError, Result,
        account::{Account, AccountKind, Device},
        invalid,
        login::{VerifiedRevocation, verify_revocation},
        profile::{GuildPlace, ProfileChange, validate_guild_order},
        unix_now,
    },
    events,
    grpc::convert,
    store::{self, bans::BanNotice},
};

const MAX_PAGE_SIZE: u64 = 100;
/// Device revocations one account may keep.
const MAX_REVOCATIONS: u64 = 1000;

impl IdentityApp {
    async fn account_of(&self, user_id: &str) -> Result<Account> {
        store::accounts::find(&self.db, user_id)
            .await?
            .ok_or_else(|| {
                IdentityError::NotFound("no account for this user on this server".into())
            })
    }

    pub async fn get_account(&self, caller: &Caller) -> Result<Account> {
        self.account_of(&caller.user_id).await
    }

    pub async fn get_profile(&self, user_id: &str) -> Result<Account> {
        crate::domain::login::parse_user_id(user_id)?;
        self.account_of(user_id).await
    }

    /// Publishes the new profile in the same transaction as the change.
    pub(crate) async fn publish_profile(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        account: &Account,
    ) -> Result<()> {
        let event = ProfileUpdated {
            profile: Some(convert::profile(account, &self.config.server.assets_origin)),
        };
        self.outbox
            .enqueue(txn, events::profile_updated(&event))
            .await?;
        Ok(())
    }

    pub async fn update_profile(&self, caller: &Caller, change: ProfileChange) -> Result<Account> {
        let change = change.validated()?;
        let account = self.account_of(&caller.user_id).await?;
        if account.kind == AccountKind::Shadow && account.is_profile_synced {
            return Err(IdentityError::FailedPrecondition(format!(
                "this profile follows the user's home server ({}); unlink it with SetProfileSync to set a local one",
                account.home_server
            )));
        }
        if account.kind == AccountKind::Shadow
            && change
                .avatar_file_id
                .as_deref()
                .is_some_and(|f| !f.is_empty())
        {
            return Err(invalid(
                "a local avatar file is only available to accounts homed here",
            ));
        }
        // Checked with media before the transaction (no network call inside it).
        if let Some(file_id) = change.avatar_file_id.as_deref().filter(|f| !f.is_empty()) {
            self.avatars.check(&caller.user_id, file_id).await?;
        }
        let txn = self.db.begin().await?;
        let updated = store::accounts::update_profile(
            &txn,
            &caller.user_id,
            &change,
            mzchat_platform::db::now_millis(),
        )
        .await?
        .ok_or_else(|| IdentityError::NotFound("account disappeared".into()))?;
        self.publish_profile(&txn, &updated).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(updated)
    }

    pub async fn set_profile_sync(
        &self,
        caller: &Caller,
        synced: bool,
        local: ProfileChange,
    ) -> Result<Account> {
        // The local profile matters only when unlinking.
        let local = if synced {
            ProfileChange::default()
        } else {
            local.validated()?
        };
        let account = self.account_of(&caller.user_id).await?;
        if account.kind != AccountKind::Shadow {
            return Err(IdentityError::FailedPrecondition(
                "profile sync applies to accounts homed on another server; this one is homed here"
                    .into(),
            ));
        }
        if local
            .avatar_file_id
            .as_deref()
            .is_some_and(|f| !f.is_empty())
        {
            return Err(invalid(
                "a local avatar file is only available to accounts homed here",
            ));
        }
        let txn = self.db.begin().await?;
        let updated = store::accounts::set_profile_sync(
            &txn,
            &caller.user_id,
            synced,
            &local,
            mzchat_platform::db::now_millis(),
        )
        .await?
        .ok_or_else(|| IdentityError::NotFound("account disappeared".into()))?;
        self.publish_profile(&txn, &updated).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(updated)
    }

    pub async fn set_presence(&self, caller: &Caller, preference: i32) -> Result<()> {
        if mzchat_proto::common::PresencePreference::try_from(preference).is_err()
            || preference == 0
        {
            return Err(invalid(
                "presence_preference must be ONLINE, IDLE, DO_NOT_DISTURB or INVISIBLE",
            ));
        }
        let txn = self.db.begin().await?;
        let updated = store::accounts::set_presence(
            &txn,
            &caller.user_id,
            preference,
            mzchat_platform::db::now_millis(),
        )
        .await?
        .ok_or_else(|| IdentityError::NotFound("no account for this user on this server".into()))?;
        self.publish_profile(&txn, &updated).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    pub async fn guild_order(&self, caller: &Caller) -> Result<Vec<GuildPlace>> {
        Ok(store::accounts::guild_order(&self.db, &caller.user_id).await?)
    }

    pub async fn set_guild_order(&self, caller: &Caller, order: Vec<GuildPlace>) -> Result<()> {
        let order = validate_guild_order(order, self.config.server.insecure_dev)?;
        store::accounts::set_guild_order(
            &self.db,
            &caller.user_id,
            &order,
            mzchat_platform::db::now_millis(),
        )
        .await?;
        Ok(())
    }

    pub async fn list_devices(&self, caller: &Caller) -> Result<Vec<Device>> {
        Ok(store::devices::list(&self.db, &caller.user_id).await?)
    }

    /// Revokes a device on the strength of a statement signed by the user's root key.
    pub async fn revoke_device(
        &self,
        user_id: &str,
        statement: Option<&SignedStatement>,
    ) -> Result<()> {
        let revocation = verify_revocation(user_id, statement, unix_now())?;
        self.account_of(user_id).await?;
        // Revocations may name devices not seen yet (revoked before they log in here), so
        // each account's are bounded instead; nobody has this many devices.
        if store::devices::revocation_count(&self.db, user_id).await? >= MAX_REVOCATIONS {
            return Err(IdentityError::ResourceExhausted(format!(
                "an account keeps at most {MAX_REVOCATIONS} device revocations"
            )));
        }
        let now_ms = mzchat_platform::db::now_millis();
        let txn = self.db.begin().await?;
        self.apply_revocation(&txn, &revocation, now_ms).await?;
        txn.commit().await?;
        self.outbox.wake();
        Ok(())
    }

    /// Revokes the device, its refresh tokens and (through the event) its open streams; false
    /// when it was already revoked.
    pub(crate) async fn apply_revocation(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        revocation: &VerifiedRevocation,
        now_ms: i64,
    ) -> Result<bool> {
        if !store::devices::revoke(txn, revocation, now_ms).await? {
            return Ok(false);
        }
        store::sessions::revoke_device(txn, &revocation.user_id, &revocation.device_id, now_ms)
            .await?;
        let event = DeviceRevoked {
            user_id: revocation.user_id.clone(),
            device_id: revocation.device_id.clone(),
            revoked_at: Some(prost_types::Timestamp {
                seconds: revocation.revoked_at,
                nanos: 0,
            }),
        };
        self.outbox
            .enqueue(txn, events::device_revoked(&event))
            .await?;
        tracing::info!(user_id = %revocation.user_id, device_id = %revocation.device_id, "device revoked");
        Ok(true)
    }

    pub async fn ban_notifications(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<BanNotice>, String)> {
        let limit = match page_size {
            n if n < 0 => return Err(invalid("page_size must not be negative")),
            0 => 50,
            n => (n as u64).min(MAX_PAGE_SIZE),
        };
        // Tokens are notice ids this server handed out.
        if uuid::Uuid::parse_str(page_token).is_err() && !page_token.is_empty() {
            return Err(invalid("page_token is not one this server gave"));
        }
        let after = (!page_token.is_empty()).then_some(page_token);
        let notices = store::bans::list(&self.db, &caller.user_id, after, limit).await?;
        let next = if notices.len() as u64 == limit {
            notices.last().map(|n| n.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok((notices, next))
    }
}
