//! What identity publishes on the bus (through its outbox). Subjects are relative to the bus
//! prefix; each constant sits next to the payload it carries.

use mzchat_platform::outbox::OutboxEvent;
use mzchat_proto::{
    federation::{FederationJob, UpdateHomeServerJob, VerifyUserJob, federation_job},
    identity::{AccountRegistered, DeviceRevoked, ProfileUpdated},
};

/// Payload `mzchat.identity.v1.AccountRegistered`.
pub const ACCOUNT_REGISTERED: &str = "identity.v1.account.registered";
/// Payload `mzchat.identity.v1.ProfileUpdated`.
pub const PROFILE_UPDATED: &str = "identity.v1.profile.updated";
/// Payload `mzchat.identity.v1.DeviceRevoked`.
pub const DEVICE_REVOKED: &str = "identity.v1.device.revoked";
/// Payload `mzchat.federation.v1.FederationJob` (kind VerifyUser), consumed by federation-sync.
pub const JOB_VERIFY_USER: &str = "federation.v1.job.verify_user";
/// Payload `mzchat.federation.v1.FederationJob` (kind UpdateHomeServer).
pub const JOB_UPDATE_HOME_SERVER: &str = "federation.v1.job.update_home_server";

/// Verify and migration jobs stay worth doing for 7 days (PROTOCOL.md section 7).
const VERIFY_TTL_SECS: i64 = 7 * 86_400;

pub fn account_registered(event: &AccountRegistered) -> OutboxEvent {
    OutboxEvent::new(ACCOUNT_REGISTERED, event)
}

pub fn profile_updated(event: &ProfileUpdated) -> OutboxEvent {
    OutboxEvent::new(PROFILE_UPDATED, event)
}

pub fn device_revoked(event: &DeviceRevoked) -> OutboxEvent {
    OutboxEvent::new(DEVICE_REVOKED, event)
}

fn timestamp(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// A job asking `home_server` for the authoritative record of `user_id`.
pub fn verify_user_job(user_id: &str, home_server: &str, now: i64) -> OutboxEvent {
    let id = uuid::Uuid::now_v7().to_string();
    let job = FederationJob {
        id: id.clone(),
        destination: home_server.to_owned(),
        created_at: timestamp(now),
        expires_at: timestamp(now + VERIFY_TTL_SECS),
        kind: Some(federation_job::Kind::VerifyUser(VerifyUserJob {
            user_id: user_id.to_owned(),
            follow_up: false,
        })),
    };
    let mut event = OutboxEvent::new(JOB_VERIFY_USER, &job);
    event.id = id;
    event
}

/// A job telling `target` that the user moved to this server (the proof's fields as signed).
pub fn update_home_server_job(target: &str, job: UpdateHomeServerJob, now: i64) -> OutboxEvent {
    let id = uuid::Uuid::now_v7().to_string();
    let job = FederationJob {
        id: id.clone(),
        destination: target.to_owned(),
        created_at: timestamp(now),
        expires_at: timestamp(now + VERIFY_TTL_SECS),
        kind: Some(federation_job::Kind::UpdateHomeServer(job)),
    };
    let mut event = OutboxEvent::new(JOB_UPDATE_HOME_SERVER, &job);
    event.id = id;
    event
}
