//! What each job kind sends, and what its answer means: results for the services that keep
//! copies, follow-up jobs, or a failure sorted into retry-worthy and final.

use mzchat_platform::{Origin, federation::jobs::new_job};
use mzchat_proto::federation::{
    FederationJob, FederationResult, HomeServerMoved, PropagateBanJob, PropagateBanRequest,
    PushNotificationRequest, UpdateHomeServerRequest, UserRejected, UserVerified, VerifyUserJob,
    VerifyUserRequest, federation_job::Kind, federation_result::Result as Outcome,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::outbound::{CallError, Outbound};

pub fn result_subject(result: &FederationResult) -> &'static str {
    match result.result {
        Some(Outcome::UserVerified(_)) => "federation.v1.result.user_verified",
        Some(Outcome::UserRejected(_)) => "federation.v1.result.user_rejected",
        Some(Outcome::HomeServerMoved(_)) => "federation.v1.result.home_server_moved",
        None => "federation.v1.result.unknown",
    }
}

/// What a successful call leaves behind.
#[derive(Debug, Default)]
pub struct Effects {
    pub results: Vec<FederationResult>,
    pub jobs: Vec<FederationJob>,
}

#[derive(Debug)]
pub enum Failure {
    /// The destination is unreachable or struggling: retry with backoff.
    Transient(String),
    /// It answered in a way retrying cannot change.
    Permanent(String),
    /// Our side failed (signing); retry soon without blaming the destination.
    Local(String),
    /// The destination is up but rate-limits us: this job waits a little; the destination is
    /// not put into backoff, so its other jobs keep going.
    Throttled(String),
}

/// Worth retrying. UNAUTHENTICATED is among them: the receiver may not have fetched our
/// rotated key yet, or our clocks may disagree for a while.
fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unauthenticated
            | Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Internal
            | Code::Unknown
            | Code::Cancelled
    )
}

fn failure(err: CallError) -> Failure {
    match err {
        CallError::Local(reason) => Failure::Local(reason),
        CallError::Remote(status) if status.code() == Code::ResourceExhausted => {
            Failure::Throttled(status.message().to_owned())
        }
        CallError::Remote(status) if transient(status.code()) => {
            Failure::Transient(format!("{:?}: {}", status.code(), status.message()))
        }
        CallError::Remote(status) => {
            Failure::Permanent(format!("{:?}: {}", status.code(), status.message()))
        }
    }
}

/// A HOMESERVER_MOVED answer: where the user went, and the migration's proof.
struct Moved {
    new_homeserver: String,
    migration_timestamp: i64,
    migration_signature: Vec<u8>,
}

/// Reads HOMESERVER_MOVED from a status; the new home must be a valid origin other than the
/// server that answered.
fn moved(status: &Status, answered: &Origin, allow_http: bool) -> Option<Result<Moved, Failure>> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    if status.code() != Code::FailedPrecondition {
        return None;
    }
    let info = status.get_details_error_info()?;
    if info.reason != "HOMESERVER_MOVED" {
        return None;
    }
    let named = info
        .metadata
        .get("new_homeserver")
        .cloned()
        .unwrap_or_default();
    let new_homeserver = match Origin::parse(&named, allow_http) {
        Ok(origin) if origin != *answered => origin.to_string(),
        _ => {
            return Some(Err(Failure::Permanent(format!(
                "HOMESERVER_MOVED names an invalid new home {named:?}"
            ))));
        }
    };
    Some(Ok(Moved {
        new_homeserver,
        migration_timestamp: info
            .metadata
            .get("migration_timestamp")
            .and_then(|t| t.parse().ok())
            .unwrap_or_default(),
        migration_signature: info
            .metadata
            .get("migration_signature")
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .unwrap_or_default(),
    }))
}

fn result(job: &FederationJob, outcome: Outcome) -> FederationResult {
    FederationResult {
        id: uuid::Uuid::now_v7().to_string(),
        job_id: job.id.clone(),
        origin: job.destination.clone(),
        at: Some(prost_types::Timestamp {
            seconds: mzchat_platform::db::now_millis() / 1000,
            nanos: 0,
        }),
        result: Some(outcome),
    }
}

async fn verify_user(
    outbound: &Outbound,
    destination: &Origin,
    job: &FederationJob,
    verify: &VerifyUserJob,
    allow_http: bool,
) -> Result<Effects, Failure> {
    let request = VerifyUserRequest {
        user_id: verify.user_id.clone(),
    };
    let outcome = match outbound.verify_user(destination, request).await {
        Ok(answer) => Outcome::UserVerified(UserVerified {
            user_id: verify.user_id.clone(),
            profile: answer.profile,
            home_server: answer.home_server,
            revocations: answer.revocations,
            delegation_token: answer.push_delegation_token,
        }),
        Err(CallError::Remote(status)) if status.code() == Code::NotFound => {
            Outcome::UserRejected(UserRejected {
                user_id: verify.user_id.clone(),
            })
        }
        Err(CallError::Remote(status)) if moved(&status, destination, allow_http).is_some() => {
            let moved = moved(&status, destination, allow_http).unwrap_or_else(|| {
                Err(Failure::Permanent(
                    "HOMESERVER_MOVED without details".into(),
                ))
            })?;
            let mut effects = Effects::default();
            if !verify.follow_up {
                effects.jobs.push(new_job(
                    &moved.new_homeserver,
                    Kind::VerifyUser(VerifyUserJob {
                        user_id: verify.user_id.clone(),
                        follow_up: true,
                    }),
                ));
            }
            effects.results.push(result(
                job,
                Outcome::HomeServerMoved(HomeServerMoved {
                    user_id: verify.user_id.clone(),
                    new_homeserver: moved.new_homeserver,
                    migration_timestamp: moved.migration_timestamp,
                    migration_signature: moved.migration_signature,
                }),
            ));
            return Ok(effects);
        }
        Err(err) => return Err(failure(err)),
    };
    Ok(Effects {
        results: vec![result(job, outcome)],
        jobs: vec![],
    })
}

/// Calls `destination` for `job`.
pub async fn run(
    outbound: &Outbound,
    destination: &Origin,
    job: &FederationJob,
    allow_http: bool,
) -> Result<Effects, Failure> {
    // NOT_FOUND answers "that user is not here": nothing more to do for notices.
    let notice = |answer: Result<(), CallError>| match answer {
        Ok(()) => Ok(Effects::default()),
        Err(CallError::Remote(status)) if status.code() == Code::NotFound => Ok(Effects::default()),
        Err(err) => Err(failure(err)),
    };
    match &job.kind {
        Some(Kind::VerifyUser(verify)) => {
            verify_user(outbound, destination, job, verify, allow_http).await
        }
        Some(Kind::UpdateHomeServer(update)) => notice(
            outbound
                .update_home_server(
                    destination,
                    UpdateHomeServerRequest {
                        user_id: update.user_id.clone(),
                        new_homeserver: update.new_homeserver.clone(),
                        migration_timestamp: update.migration_timestamp,
                        migration_signature: update.migration_signature.clone(),
                    },
                )
                .await,
        ),
        Some(Kind::PropagateBan(ban)) => {
            let answer = outbound
                .propagate_ban(
                    destination,
                    PropagateBanRequest {
                        user_id: ban.user_id.clone(),
                        guild_id: ban.guild_id.clone(),
                        guild_name: ban.guild_name.clone(),
                        reason: ban.reason.clone(),
                        banned_at: ban.banned_at,
                        remaining_memberships: ban.remaining_memberships,
                    },
                )
                .await;
            match answer {
                // The user moved: the notice goes to the new home, once.
                Err(CallError::Remote(status)) if !ban.follow_up => {
                    match moved(&status, destination, allow_http) {
                        Some(moved) => {
                            let forward = PropagateBanJob {
                                follow_up: true,
                                ..ban.clone()
                            };
                            Ok(Effects {
                                results: vec![],
                                jobs: vec![new_job(
                                    &moved?.new_homeserver,
                                    Kind::PropagateBan(forward),
                                )],
                            })
                        }
                        None => notice(Err(CallError::Remote(status))),
                    }
                }
                answer => notice(answer),
            }
        }
        Some(Kind::PushNotification(push)) => outbound
            .push_notification(
                destination,
                PushNotificationRequest {
                    delegation_token: push.delegation_token.clone(),
                    payload: push.payload.clone(),
                },
            )
            .await
            .map(|()| Effects::default())
            .map_err(failure),
        None => Err(Failure::Permanent("job has no kind".into())),
    }
}
