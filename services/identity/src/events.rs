//! What identity publishes on the bus (through its outbox). Subjects are relative to the bus
//! prefix; each constant sits next to the payload it carries.

use mzchat_platform::{federation::jobs, outbox::OutboxEvent};
use mzchat_proto::{
    federation::{UpdateHomeServerJob, VerifyUserJob, federation_job},
    identity::{AccountRegistered, DeviceRevoked, ProfileUpdated},
};

/// Payload `mzchat.identity.v1.AccountRegistered`.
pub const ACCOUNT_REGISTERED: &str = "identity.v1.account.registered";
/// Payload `mzchat.identity.v1.ProfileUpdated`.
pub const PROFILE_UPDATED: &str = "identity.v1.profile.updated";
/// Payload `mzchat.identity.v1.DeviceRevoked`.
pub const DEVICE_REVOKED: &str = "identity.v1.device.revoked";

pub fn account_registered(event: &AccountRegistered) -> OutboxEvent {
    OutboxEvent::new(ACCOUNT_REGISTERED, event)
}

pub fn profile_updated(event: &ProfileUpdated) -> OutboxEvent {
    OutboxEvent::new(PROFILE_UPDATED, event)
}

pub fn device_revoked(event: &DeviceRevoked) -> OutboxEvent {
    OutboxEvent::new(DEVICE_REVOKED, event)
}

/// A job asking `home_server` for the authoritative record of `user_id`.
pub fn verify_user_job(user_id: &str, home_server: &str) -> OutboxEvent {
    let kind = federation_job::Kind::VerifyUser(VerifyUserJob {
        user_id: user_id.to_owned(),
        follow_up: false,
    });
    jobs::job_event(&jobs::new_job(home_server, kind))
}

/// A job telling `target` that the user moved to this server (the proof's fields as signed).
pub fn update_home_server_job(target: &str, job: UpdateHomeServerJob) -> OutboxEvent {
    jobs::job_event(&jobs::new_job(
        target,
        federation_job::Kind::UpdateHomeServer(job),
    ))
}
