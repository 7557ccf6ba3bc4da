//! Reconciles against the mocked API server: the exact requests of each scenario, in order.

mod script;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::build::{self, Observed};
use crate::fixtures::patched;
use crate::mock::{Expect, pair, verify};
use crate::service::Service;
use crate::validate::validate;

use script::*;

#[tokio::test]
async fn a_first_install_creates_the_keys_and_runs_the_migration_before_any_deployment() {
    let hs = small("{}");
    let desired = desired_at(&hs, "0.1.0");
    let mut script = prelude(&desired, false);
    script.extend(job_created(&desired, JOB_RUNNING()));
    script.extend(epilogue(&desired));
    script.push(status(
        &hs,
        &[
            ("Progressing", "True", "MigrationRunning"),
            ("Available", "False", "ServicesNotReady"),
        ],
        None,
    ));
    run(hs, script).await;
}

#[tokio::test]
async fn a_first_install_creates_each_deployment_once_the_one_before_is_ready() {
    let hs = small("{}");
    let desired = desired_at(&hs, "0.1.0");
    let mut script = prelude(&desired, true);
    script.push(job_found(&desired, JOB_DONE()));
    script.push(deployment(&desired, Service::Identity, "0.1.0", true));
    script.push(deployment(&desired, Service::Guild, "0.1.0", false));
    script.extend(epilogue(&desired));
    script.push(status(
        &hs,
        &[
            ("Progressing", "True", "RollingOut"),
            ("Degraded", "False", "AsExpected"),
        ],
        None,
    ));
    run(hs, script).await;
}

#[tokio::test]
async fn a_first_install_is_available_once_every_deployment_is_ready() {
    let hs = small("{}");
    let desired = desired_at(&hs, "0.1.0");
    let mut script = prelude(&desired, true);
    script.push(job_found(&desired, JOB_DONE()));
    script.extend(Service::ALL.map(|s| deployment(&desired, s, "0.1.0", true)));
    script.extend(epilogue(&desired));
    script.push(status(
        &hs,
        &[
            ("Available", "True", "AllServicesReady"),
            ("Progressing", "False", "RolloutComplete"),
        ],
        Some("0.1.0"),
    ));
    run(hs, script).await;
}

#[tokio::test]
async fn a_new_version_keeps_the_deployments_on_the_current_one_while_it_migrates() {
    let hs = small("{spec: {version: 0.2.0}, status: {currentVersion: 0.1.0}}");
    let (new, old) = (desired_at(&hs, "0.2.0"), desired_at(&hs, "0.1.0"));
    let mut script = prelude(&new, true);
    script.extend(job_created(&new, JOB_RUNNING()));
    script.extend(Service::ALL.map(|s| deployment(&old, s, "0.1.0", true)));
    script.extend(epilogue(&new));
    script.push(status(
        &hs,
        &[
            ("Progressing", "True", "MigrationRunning"),
            ("Available", "True", "AllServicesReady"),
        ],
        Some("0.1.0"),
    ));
    run(hs, script).await;
}

#[tokio::test]
async fn after_the_migration_the_services_move_one_at_a_time_in_a_fixed_order() {
    let hs = small("{spec: {version: 0.2.0}, status: {currentVersion: 0.1.0}}");
    let (new, old) = (desired_at(&hs, "0.2.0"), desired_at(&hs, "0.1.0"));
    let mut script = prelude(&new, true);
    script.push(job_found(&new, JOB_DONE()));
    script.push(deployment(&new, Service::Identity, "0.2.0", true));
    script.push(deployment(&new, Service::Guild, "0.2.0", false));
    for s in [Service::FederationSync, Service::PushRelay, Service::Media] {
        script.push(deployment(&old, s, "0.1.0", true));
    }
    script.extend(epilogue(&new));
    script.push(status(
        &hs,
        &[("Progressing", "True", "RollingOut")],
        Some("0.1.0"),
    ));
    run(hs, script).await;
}

#[tokio::test]
async fn the_new_version_becomes_current_when_every_service_has_moved() {
    let hs =
        small("{spec: {version: 0.2.0}, status: {currentVersion: 0.1.0, targetVersion: 0.2.0}}");
    let new = desired_at(&hs, "0.2.0");
    let mut script = prelude(&new, true);
    script.push(job_found(&new, JOB_DONE()));
    script.extend(Service::ALL.map(|s| deployment(&new, s, "0.2.0", true)));
    script.extend(epilogue(&new));
    script.push(status(
        &hs,
        &[
            ("Available", "True", "AllServicesReady"),
            ("Progressing", "False", "RolloutComplete"),
        ],
        Some("0.2.0"),
    ));
    run(hs, script).await;
}

#[tokio::test]
async fn a_failed_migration_is_degraded_and_moves_nothing() {
    let hs = small("{spec: {version: 0.2.0}, status: {currentVersion: 0.1.0}}");
    let (new, old) = (desired_at(&hs, "0.2.0"), desired_at(&hs, "0.1.0"));
    let mut script = prelude(&new, true);
    script.push(job_found(&new, JOB_FAILED()));
    script.extend(Service::ALL.map(|s| deployment(&old, s, "0.1.0", true)));
    script.extend(epilogue(&new));
    script.push(status(
        &hs,
        &[
            ("Degraded", "True", "MigrationFailed"),
            ("Progressing", "False", "MigrationFailed"),
        ],
        Some("0.1.0"),
    ));
    run(hs, script).await;
}

#[tokio::test]
async fn a_settled_version_applies_every_deployment_without_a_migration() {
    let hs = small("{status: {currentVersion: 0.1.0}}");
    let desired = desired_at(&hs, "0.1.0");
    let mut script = prelude(&desired, true);
    script.extend(Service::ALL.map(|s| deployment(&desired, s, "0.1.0", true)));
    script.extend(epilogue(&desired));
    script.push(status(
        &hs,
        &[("Available", "True", "AllServicesReady")],
        Some("0.1.0"),
    ));
    run(hs, script).await;
}

#[tokio::test]
async fn a_paused_homeserver_gets_only_a_status_patch() {
    let hs = small("{spec: {paused: true}, status: {currentVersion: 0.1.0}}");
    let script = vec![status(
        &hs,
        &[("ReconciliationPaused", "True", "Paused")],
        Some("0.1.0"),
    )];
    run(hs, script).await;
}

#[tokio::test]
async fn an_invalid_spec_gets_an_event_and_a_degraded_status_and_nothing_applied() {
    let hs = small("{spec: {origin: ftp://chat.example.org}}");
    let script = vec![
        Expect::post("/apis/events.k8s.io/v1/namespaces/chat/events").check(|body| {
            assert_eq!(body["reason"], "InvalidSpec");
            assert_eq!(body["type"], "Warning");
            assert!(
                body["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("spec.origin")),
                "{body}"
            );
            assert_eq!(body["regarding"]["name"], "small");
        }),
        status(&hs, &[("Degraded", "True", "InvalidSpec")], None),
    ];
    run(hs, script).await;
}

#[tokio::test]
async fn an_invalid_spec_already_reported_makes_no_requests() {
    let hs = small("{spec: {origin: ftp://chat.example.org}}");
    let written = Arc::new(std::sync::Mutex::new(Value::Null));
    let keep = written.clone();
    let script = vec![
        Expect::post("/apis/events.k8s.io/v1/namespaces/chat/events"),
        status(&hs, &[("Degraded", "True", "InvalidSpec")], None).check(move |body| {
            *keep.lock().expect("not poisoned") = body["status"].clone();
        }),
    ];
    run(hs.clone(), script).await;
    // the next reconcile reads what the first one wrote: same status, same event
    let mut again = hs;
    let status = written.lock().expect("not poisoned").clone();
    again.status = Some(serde_json::from_value(status).expect("a status"));
    run(again, Vec::new()).await;
}

#[tokio::test]
async fn a_homeserver_being_deleted_makes_no_requests() {
    let hs = small("{metadata: {deletionTimestamp: '2026-01-01T00:00:00Z'}}");
    run(hs, Vec::new()).await;
}

#[tokio::test]
async fn a_gateway_route_without_the_gateway_api_is_degraded() {
    let hs = patched("valid-gateway", "{status: {currentVersion: 0.1.0}}");
    let desired = build::desired(&validate(&hs).expect("valid"), &Observed::default());
    let version = hs.spec.version.clone();
    assert_eq!(version, "0.1.0", "the fixture's version");
    let name = hs.metadata.name.clone().unwrap_or_default();
    let ns = hs.metadata.namespace.clone().unwrap_or_default();
    let mut script = vec![Expect::get(format!("/api/v1/namespaces/{ns}/secrets/{name}-keys"))
        .reply(200, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("{name}-keys")}}))];
    script.extend(prelude(&desired, true).into_iter().skip(1));
    script.extend(Service::ALL.map(|s| deployment(&desired, s, "0.1.0", true)));
    script.push(Expect::get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/grpcroutes.gateway.networking.k8s.io").not_found());
    script.push(Expect::get(MONITOR_CRD).not_found());
    script.push(
        Expect::patch(format!(
            "/apis/mzchat.io/v1alpha1/namespaces/{ns}/homeservers/{name}/status"
        ))
        .reply(200, serde_json::to_value(&hs).expect("json"))
        .check(|body| {
            let degraded = body["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Degraded"))
                .cloned();
            assert_eq!(
                degraded.map(|c| c["reason"].clone()),
                Some(json!("GatewayApiMissing")),
                "{body}"
            );
        }),
    );
    run(hs, script).await;
}

#[tokio::test]
async fn an_api_error_fails_the_reconcile_and_is_retried_later() {
    let hs = small("{status: {currentVersion: 0.1.0}}");
    let internal = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError", "code": 500, "message": "etcd timeout"});
    let (client, server) = pair();
    let server = server.run(vec![
        Expect::get(format!("{SECRETS}/small-keys")).reply(500, internal),
    ]);
    let ctx = Arc::new(crate::reconcile::Context::new(client, None));
    let error = crate::reconcile::reconcile(Arc::new(hs.clone()), ctx.clone())
        .await
        .expect_err("the api server failed");
    assert_eq!(error.kind(), "api");
    let action = crate::reconcile::error_policy(Arc::new(hs), &error, ctx);
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(30))
    );
    verify(server).await;
}

/// A CRD lookup that finds it installed.
fn crd_found(name: &str) -> Expect {
    Expect::get(format!(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    ))
    .reply(
        200,
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {"group": "g", "names": {"kind": "K", "plural": "ks"}, "scope": "Namespaced", "versions": []},
        }),
    )
}

#[tokio::test]
async fn gateway_routes_and_the_service_monitor_are_applied_where_their_crds_exist() {
    let hs = patched("valid-gateway", "{status: {currentVersion: 0.1.0}}");
    let desired = build::desired(&validate(&hs).expect("valid"), &Observed::default());
    let name = hs.metadata.name.clone().unwrap_or_default();
    let ns = hs.metadata.namespace.clone().unwrap_or_default();
    let mut script = vec![Expect::get(format!("/api/v1/namespaces/{ns}/secrets/{name}-keys"))
        .reply(200, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("{name}-keys")}}))];
    script.extend(prelude(&desired, true).into_iter().skip(1));
    script.extend(Service::ALL.map(|s| deployment(&desired, s, "0.1.0", true)));
    script.push(crd_found("grpcroutes.gateway.networking.k8s.io"));
    script.push(crd_found("httproutes.gateway.networking.k8s.io"));
    assert_eq!(
        desired.gateway_routes.len(),
        2,
        "a GRPCRoute and an HTTPRoute"
    );
    for route in &desired.gateway_routes {
        let kind = route
            .types
            .as_ref()
            .map(|t| t.kind.to_lowercase())
            .unwrap_or_default();
        let route_name = route.metadata.name.clone().unwrap_or_default();
        let path =
            format!("/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/{kind}s/{route_name}");
        script.push(Expect::apply(path, json!({})).check(|body| {
            assert_eq!(body["apiVersion"], "gateway.networking.k8s.io/v1");
            assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "Homeserver");
        }));
    }
    script.push(crd_found("servicemonitors.monitoring.coreos.com"));
    script.push(
        Expect::apply(
            format!("/apis/monitoring.coreos.com/v1/namespaces/{ns}/servicemonitors/{name}"),
            json!({}),
        )
        .check(|body| assert_eq!(body["kind"], "ServiceMonitor")),
    );
    script.push(
        Expect::patch(format!(
            "/apis/mzchat.io/v1alpha1/namespaces/{ns}/homeservers/{name}/status"
        ))
        .reply(200, serde_json::to_value(&hs).expect("json"))
        .check(|body| {
            let degraded = body["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Degraded"))
                .cloned();
            assert_eq!(
                degraded.map(|c| c["status"].clone()),
                Some(json!("False")),
                "{body}"
            );
        }),
    );
    run(hs, script).await;
}
