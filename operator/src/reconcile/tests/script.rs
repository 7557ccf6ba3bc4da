//! The requests a reconcile of valid-small makes, as scripts for the mocked API server.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::build::{self, Desired, Observed};
use crate::crd::Homeserver;
use crate::fixtures::patched;
use crate::mock::{Expect, pair, verify};
use crate::reconcile::{Context, reconcile};
use crate::service::Service;
use crate::validate::validate;

pub const STATUS_PATH: &str = "/apis/mzchat.io/v1alpha1/namespaces/chat/homeservers/small/status";
pub const SECRETS: &str = "/api/v1/namespaces/chat/secrets";
pub const JOBS: &str = "/apis/batch/v1/namespaces/chat/jobs";
pub const MONITOR_CRD: &str =
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/servicemonitors.monitoring.coreos.com";

/// valid-small (namespace chat, name small) with `patch` merged in.
pub fn small(patch: &str) -> Homeserver {
    patched("valid-small", patch)
}

pub fn desired_at(hs: &Homeserver, version: &str) -> Desired {
    let mut hs = hs.clone();
    hs.spec.version = version.to_owned();
    build::desired(&validate(&hs).expect("valid"), &Observed::default())
}

pub async fn run(hs: Homeserver, script: Vec<Expect>) {
    let (client, server) = pair();
    let server = server.run(script);
    let ctx = Arc::new(Context::new(client, None));
    reconcile(Arc::new(hs), ctx)
        .await
        .expect("reconcile succeeds");
    verify(server).await;
}

/// An apply of `object` at its path, answered with the object plus `extra`.
pub fn applied<K: Resource<DynamicType = ()>>(object: &K, extra: Value) -> Expect {
    let meta = object.meta();
    let name = meta.name.clone().unwrap_or_default();
    let path = format!("{}/{name}", K::url_path(&(), meta.namespace.as_deref()));
    Expect::apply(path, extra).check(move |body| {
        assert_eq!(body["metadata"]["name"], json!(name));
        assert_eq!(body["metadata"]["ownerReferences"][0]["kind"], "Homeserver");
    })
}

/// The keys Secret (absent: created) and the objects applied before the rollout.
pub fn prelude(desired: &Desired, keys_exist: bool) -> Vec<Expect> {
    let mut script = vec![if keys_exist {
        Expect::get(format!("{SECRETS}/small-keys")).reply(
            200,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "small-keys"}}),
        )
    } else {
        Expect::get(format!("{SECRETS}/small-keys")).not_found()
    }];
    if !keys_exist {
        script.push(Expect::post(SECRETS).check(|body| {
            assert_eq!(body["metadata"]["name"], "small-keys");
            let token = body["stringData"]
                .as_object()
                .and_then(|d| d.values().next());
            assert!(
                token.and_then(Value::as_str).is_some_and(|t| t.len() == 64),
                "{body}"
            );
        }));
    }
    script.extend(secret_reads(desired));
    script.extend(desired.services.iter().map(|o| applied(o, json!({}))));
    script.extend(
        desired
            .network_policies
            .iter()
            .map(|o| applied(o, json!({}))),
    );
    script.extend(
        desired
            .disruption_budgets
            .iter()
            .map(|o| applied(o, json!({}))),
    );
    script.extend(desired.autoscalers.iter().map(|o| applied(o, json!({}))));
    script
}

/// The Ingresses and the ServiceMonitor CRD lookup (absent) that follow the rollout.
pub fn epilogue(desired: &Desired) -> Vec<Expect> {
    let mut script: Vec<_> = desired
        .ingresses
        .iter()
        .map(|o| applied(o, json!({})))
        .collect();
    script.push(Expect::get(MONITOR_CRD).not_found());
    script
}

/// The migration Job looked up and, when absent, applied (answered with `status`).
pub fn job_created(desired: &Desired, status: Value) -> Vec<Expect> {
    let job = &desired.migration;
    let name = job.metadata.name.clone().unwrap_or_default();
    let version = job.labels().get("app.kubernetes.io/version").cloned();
    vec![
        Expect::get(format!("{JOBS}/{name}")).not_found(),
        applied(job, json!({ "status": status })).check(move |body| {
            assert_eq!(
                body["metadata"]["labels"]["app.kubernetes.io/version"],
                json!(version)
            );
        }),
    ]
}

/// The migration Job looked up, found with `status`: never applied again.
pub fn job_found(desired: &Desired, status: Value) -> Expect {
    let job = &desired.migration;
    let name = job.metadata.name.clone().unwrap_or_default();
    let mut found = serde_json::to_value(job).expect("json");
    found["status"] = status;
    Expect::get(format!("{JOBS}/{name}")).reply(200, found)
}

pub const JOB_RUNNING: fn() -> Value = || json!({"active": 1});
pub const JOB_DONE: fn() -> Value =
    || json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
pub const JOB_FAILED: fn() -> Value =
    || json!({"failed": 4, "conditions": [{"type": "Failed", "status": "True"}]});

/// A Deployment applied at `version`, answered as fully rolled out or not.
pub fn deployment(desired: &Desired, service: Service, version: &str, ready: bool) -> Expect {
    let i = Service::ALL.iter().position(|s| *s == service).unwrap_or(0);
    let object: &Deployment = &desired.deployments[i];
    let status = if ready {
        json!({"observedGeneration": 0, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1})
    } else {
        json!({"observedGeneration": 0, "replicas": 1, "updatedReplicas": 0, "readyReplicas": 1, "availableReplicas": 1})
    };
    let version = version.to_owned();
    applied(object, json!({ "status": status })).check(move |body| {
        assert_eq!(
            body["metadata"]["labels"]["app.kubernetes.io/version"],
            json!(version)
        );
    })
}

/// The status patch, with each `(type, status, reason)` checked, and currentVersion.
pub fn status(
    hs: &Homeserver,
    conditions: &'static [(&'static str, &'static str, &'static str)],
    current: Option<&'static str>,
) -> Expect {
    Expect::patch(STATUS_PATH)
        .reply(200, serde_json::to_value(hs).expect("json"))
        .check(move |body| {
            let found = body["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for (kind, value, reason) in conditions {
                let condition = found.iter().find(|c| c["type"] == *kind);
                let condition = condition.unwrap_or_else(|| panic!("no {kind} in {body}"));
                assert_eq!(
                    (condition["status"].as_str(), condition["reason"].as_str()),
                    (Some(*value), Some(*reason)),
                    "{kind}"
                );
            }
            assert_eq!(
                body["status"]["currentVersion"].as_str(),
                current,
                "currentVersion in {body}"
            );
        })
}

/// The reads of the Secrets the pods use, for their versions (each answered as version 7).
pub fn secret_reads(desired: &Desired) -> Vec<Expect> {
    let ns = desired.services[0]
        .metadata
        .namespace
        .clone()
        .unwrap_or_default();
    build::secrets_used(desired)
        .into_iter()
        .map(|name| {
            Expect::get(format!("/api/v1/namespaces/{ns}/secrets/{name}")).reply(
                200,
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                       "metadata": {"name": name, "resourceVersion": "7"}}),
            )
        })
        .collect()
}
