//! Pairing mailboxes for adding a device by QR code (PROTOCOL.md section 3).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{Caller, IdentityApp, random_bytes};
use crate::{
    domain::{IdentityError, Result, invalid},
    store::{self, mailboxes::Side},
};

pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;
const LIFETIME_MS: i64 = 5 * 60 * 1000;
const LONG_POLL: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(200);

pub struct CreatedMailbox {
    pub session_id: String,
    pub expires_at_ms: i64,
    pub qr_url: String,
}

/// Long polls waiting on one mailbox in this process: one per side is all pairing needs.
const MAX_WAITERS: usize = 2;

/// The long polls in progress, by mailbox.
#[derive(Default, Clone)]
pub struct Waiters(Arc<Mutex<HashMap<String, usize>>>);

/// A long poll's place; given back when the poll ends however it ends.
struct WaitSlot {
    waiters: Waiters,
    session_id: String,
}

impl Waiters {
    fn enter(&self, session_id: &str) -> Result<WaitSlot> {
        let mut waiting = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = waiting.entry(session_id.to_owned()).or_default();
        if *count >= MAX_WAITERS {
            return Err(IdentityError::ResourceExhausted(format!(
                "at most {MAX_WAITERS} calls may wait on one mailbox"
            )));
        }
        *count += 1;
        Ok(WaitSlot {
            waiters: self.clone(),
            session_id: session_id.to_owned(),
        })
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        let mut waiting = self.waiters.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = waiting.get_mut(&self.session_id) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.session_id);
            }
        }
    }
}

fn not_found() -> IdentityError {
    IdentityError::NotFound("pairing mailbox not found or expired".into())
}

impl IdentityApp {
    pub async fn create_mailbox(&self, caller: &Caller) -> Result<CreatedMailbox> {
        let session_id = hex::encode(random_bytes::<16>()?);
        let now_ms = mzchat_platform::db::now_millis();
        let expires_at_ms = now_ms + LIFETIME_MS;
        store::mailboxes::create(
            &self.db,
            &session_id,
            &caller.user_id,
            now_ms,
            expires_at_ms,
        )
        .await?;
        Ok(CreatedMailbox {
            qr_url: format!("{}/qr/login/{session_id}", self.config.server.origin),
            session_id,
            expires_at_ms,
        })
    }

    /// Posts this side's payload (if any) and takes the other side's, waiting for it up to 60 s
    /// when asked. The initiator is the authenticated user who created the mailbox; anyone else
    /// is the joiner. Each payload is handed out once.
    pub async fn sync_mailbox(
        &self,
        caller: Option<&Caller>,
        session_id: &str,
        payload: Vec<u8>,
        wait_for_data: bool,
    ) -> Result<Option<Vec<u8>>> {
        if session_id.len() != 32 || !session_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid("session_id must be 32 hex characters"));
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(invalid("mailbox payload must be at most 16 KiB"));
        }
        let now_ms = mzchat_platform::db::now_millis();
        let mailbox = store::mailboxes::find(&self.db, session_id, now_ms)
            .await?
            .ok_or_else(not_found)?;
        let side = match caller {
            Some(caller) if caller.user_id == mailbox.initiator_user_id => Side::Initiator,
            _ => Side::Joiner,
        };
        if !payload.is_empty()
            && !store::mailboxes::post(&self.db, session_id, side, payload).await?
        {
            return Err(IdentityError::AlreadyExists(
                "this side already posted to the mailbox".into(),
            ));
        }
        let _slot = if wait_for_data {
            Some(self.waiters.enter(session_id)?)
        } else {
            None
        };
        let deadline = tokio::time::Instant::now()
            + if wait_for_data {
                LONG_POLL
            } else {
                Duration::ZERO
            };
        loop {
            let now_ms = mzchat_platform::db::now_millis();
            if let Some(data) = store::mailboxes::take(&self.db, session_id, side, now_ms).await? {
                return Ok(Some(data));
            }
            if now_ms >= mailbox.expires_at {
                return Err(not_found());
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}
