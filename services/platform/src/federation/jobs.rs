//! Federation jobs as every service queues them (PROTOCOL.md section 7, delivery guarantees):
//! `federation.v1.job.<kind>` on the work queue, with the job id as the event id and a TTL per
//! kind, written to the outbox in the transaction of the change that causes them.

use mzchat_proto::federation::{FederationJob, federation_job::Kind};

use crate::outbox::OutboxEvent;

/// TTL of a job kind: push 10 minutes; verify, migration and ban 7 days.
pub fn ttl_secs(kind: &Kind) -> i64 {
    match kind {
        Kind::PushNotification(_) => 10 * 60,
        _ => 7 * 86_400,
    }
}

pub fn kind_name(kind: Option<&Kind>) -> &'static str {
    match kind {
        Some(Kind::VerifyUser(_)) => "verify_user",
        Some(Kind::PushNotification(_)) => "push_notification",
        Some(Kind::UpdateHomeServer(_)) => "update_home_server",
        Some(Kind::PropagateBan(_)) => "propagate_ban",
        None => "unknown",
    }
}

/// A new job for `destination`, created now.
pub fn new_job(destination: &str, kind: Kind) -> FederationJob {
    let ttl = ttl_secs(&kind);
    new_job_expiring(destination, kind, ttl)
}

/// A job that expires `ttl_secs` from now instead of its kind's default.
pub fn new_job_expiring(destination: &str, kind: Kind, ttl_secs: i64) -> FederationJob {
    let now_ms = crate::db::now_millis();
    let at = |ms: i64| prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    };
    FederationJob {
        id: uuid::Uuid::now_v7().to_string(),
        destination: destination.to_owned(),
        created_at: Some(at(now_ms)),
        expires_at: Some(at(now_ms.saturating_add(ttl_secs.saturating_mul(1000)))),
        kind: Some(kind),
    }
}

/// The outbox event that queues `job` (its id deduplicates redeliveries).
pub fn job_event(job: &FederationJob) -> OutboxEvent {
    let subject = format!("federation.v1.job.{}", kind_name(job.kind.as_ref()));
    let mut event = OutboxEvent::new(subject, job);
    event.id = job.id.clone();
    event
}
