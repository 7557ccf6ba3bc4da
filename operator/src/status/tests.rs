use k8s_openapi::jiff::Timestamp;

use super::*;

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(1_800_000_000 + seconds).expect("a valid timestamp"))
}

fn ready(replicas: i32) -> Option<ServiceStatus> {
    Some(ServiceStatus {
        replicas: Some(replicas),
        ready_replicas: Some(replicas),
        updated_replicas: Some(replicas),
    })
}

fn all_services_ready() -> ServicesStatus {
    ServicesStatus {
        identity: ready(2),
        guild: ready(2),
        federation_sync: ready(1),
        push_relay: ready(1),
        media: ready(1),
    }
}

fn reconciled(rollout: Rollout, current: Option<&str>, services: ServicesStatus) -> Outcome {
    Outcome::Reconciled(Box::new(Progress {
        target_version: "0.2.0".to_owned(),
        current_version: current.map(str::to_owned),
        rollout,
        services,
        degraded: None,
    }))
}

fn condition(status: &HomeserverStatus, kind: ConditionType) -> &Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == kind.as_str())
        .unwrap_or_else(|| panic!("no {kind:?} condition in {status:?}"))
}

#[test]
fn a_paused_homeserver_reports_only_reconciliation_paused() {
    let status = next_status(None, Some(3), &Outcome::Paused, &at(0));
    assert_eq!(status.conditions.len(), 1);
    let paused = condition(&status, ConditionType::ReconciliationPaused);
    assert_eq!(
        (paused.status.as_str(), paused.reason.as_str()),
        ("True", PAUSED)
    );
    assert_eq!(status.observed_generation, Some(3));
}

#[test]
fn an_invalid_spec_is_degraded_with_every_message() {
    let outcome = Outcome::InvalidSpec(vec![
        "spec.origin: bad".into(),
        "spec.version: empty".into(),
    ]);
    let status = next_status(None, Some(1), &outcome, &at(0));
    let degraded = condition(&status, ConditionType::Degraded);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", INVALID_SPEC)
    );
    assert_eq!(degraded.message, "spec.origin: bad; spec.version: empty");
    assert_eq!(
        condition(&status, ConditionType::Progressing).status,
        "False"
    );
}

#[test]
fn a_running_migration_is_progressing_and_not_available() {
    let outcome = reconciled(
        Rollout::MigrationRunning("hs-migrate-0.2.0".into()),
        None,
        ServicesStatus::default(),
    );
    let status = next_status(None, Some(1), &outcome, &at(0));
    let progressing = condition(&status, ConditionType::Progressing);
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_str()),
        ("True", MIGRATION_RUNNING)
    );
    assert_eq!(condition(&status, ConditionType::Available).status, "False");
    assert_eq!(condition(&status, ConditionType::Degraded).status, "False");
    assert_eq!(status.current_version, None);
    assert_eq!(status.target_version.as_deref(), Some("0.2.0"));
}

#[test]
fn a_failed_migration_is_degraded_and_keeps_the_current_version() {
    let outcome = reconciled(
        Rollout::MigrationFailed("hs-migrate-0.2.0".into()),
        Some("0.1.0"),
        all_services_ready(),
    );
    let status = next_status(None, Some(2), &outcome, &at(0));
    let degraded = condition(&status, ConditionType::Degraded);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", MIGRATION_FAILED)
    );
    assert_eq!(
        condition(&status, ConditionType::Progressing).status,
        "False"
    );
    assert_eq!(condition(&status, ConditionType::Available).status, "True");
    assert_eq!(status.current_version.as_deref(), Some("0.1.0"));
}

#[test]
fn a_complete_rollout_is_available_with_the_new_version() {
    let outcome = reconciled(Rollout::Complete, Some("0.2.0"), all_services_ready());
    let status = next_status(None, Some(2), &outcome, &at(0));
    assert_eq!(condition(&status, ConditionType::Available).status, "True");
    assert_eq!(
        condition(&status, ConditionType::Progressing).reason,
        "RolloutComplete"
    );
    assert_eq!(status.current_version.as_deref(), Some("0.2.0"));
    assert_eq!(status.services, Some(all_services_ready()));
}

#[test]
fn a_service_without_ready_pods_makes_the_homeserver_unavailable() {
    let mut services = all_services_ready();
    services.media = Some(ServiceStatus {
        replicas: Some(1),
        ready_replicas: Some(0),
        updated_replicas: Some(1),
    });
    let status = next_status(
        None,
        Some(2),
        &reconciled(Rollout::Complete, Some("0.2.0"), services),
        &at(0),
    );
    assert_eq!(condition(&status, ConditionType::Available).status, "False");
}

#[test]
fn transition_times_change_only_when_a_status_flips() {
    let running = reconciled(
        Rollout::MigrationRunning("j".into()),
        None,
        ServicesStatus::default(),
    );
    let first = next_status(None, Some(1), &running, &at(0));
    let again = next_status(Some(&first), Some(1), &running, &at(60));
    assert_eq!(
        condition(&again, ConditionType::Progressing).last_transition_time,
        at(0),
        "same status, same transition time"
    );
    let rolling = reconciled(
        Rollout::RollingOut(Service::Identity),
        None,
        ServicesStatus::default(),
    );
    let moved = next_status(Some(&again), Some(1), &rolling, &at(120));
    let progressing = condition(&moved, ConditionType::Progressing);
    assert_eq!(
        progressing.reason, "RollingOut",
        "the reason follows the outcome"
    );
    assert_eq!(
        progressing.last_transition_time,
        at(0),
        "still True: the time stays"
    );
    let done = next_status(
        Some(&moved),
        Some(1),
        &reconciled(Rollout::Complete, Some("0.2.0"), all_services_ready()),
        &at(180),
    );
    assert_eq!(
        condition(&done, ConditionType::Progressing).last_transition_time,
        at(180)
    );
    assert_eq!(
        condition(&done, ConditionType::Available).last_transition_time,
        at(180)
    );
    assert_eq!(
        condition(&done, ConditionType::Degraded).last_transition_time,
        at(0)
    );
}

#[test]
fn pausing_keeps_the_other_conditions_and_unpausing_flips_only_paused() {
    let done = next_status(
        None,
        Some(1),
        &reconciled(Rollout::Complete, Some("0.2.0"), all_services_ready()),
        &at(0),
    );
    let paused = next_status(Some(&done), Some(2), &Outcome::Paused, &at(60));
    assert_eq!(condition(&paused, ConditionType::Available).status, "True");
    assert_eq!(
        condition(&paused, ConditionType::ReconciliationPaused).last_transition_time,
        at(60)
    );
    let resumed = next_status(
        Some(&paused),
        Some(3),
        &reconciled(Rollout::Complete, Some("0.2.0"), all_services_ready()),
        &at(120),
    );
    let flag = condition(&resumed, ConditionType::ReconciliationPaused);
    assert_eq!(
        (flag.status.as_str(), flag.last_transition_time.clone()),
        ("False", at(120))
    );
    assert_eq!(
        condition(&resumed, ConditionType::Available).last_transition_time,
        at(0)
    );
}

#[test]
fn conditions_keep_a_fixed_order() {
    let status = next_status(
        None,
        Some(1),
        &reconciled(Rollout::Complete, Some("0.2.0"), all_services_ready()),
        &at(0),
    );
    let kinds: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "Available",
            "Progressing",
            "Degraded",
            "ReconciliationPaused"
        ]
    );
}

#[test]
fn a_degraded_reason_is_reported_next_to_a_complete_rollout() {
    let Outcome::Reconciled(mut progress) =
        reconciled(Rollout::Complete, Some("0.2.0"), all_services_ready())
    else {
        unreachable!()
    };
    progress.degraded = Some((
        "GatewayApiMissing".into(),
        "install the Gateway API CRDs".into(),
    ));
    let status = next_status(None, Some(1), &Outcome::Reconciled(progress), &at(0));
    let degraded = condition(&status, ConditionType::Degraded);
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "GatewayApiMissing")
    );
}
