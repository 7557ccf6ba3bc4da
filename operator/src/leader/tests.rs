use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;
use crate::mock::{Expect, pair, verify};

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/operators/leases/mzchat-operator";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/operators/leases";

fn lease(holder: &str, renewed_seconds_ago: i64) -> Value {
    let renewed = Timestamp::now() - SignedDuration::from_secs(renewed_seconds_ago);
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "mzchat-operator", "namespace": "operators", "resourceVersion": "41"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": renewed,
            "renewTime": renewed,
            "leaseTransitions": 2,
        },
    })
}

async fn attempt(script: Vec<Expect>) -> Result<bool, kube::Error> {
    let (client, server) = pair();
    let server = server.run(script);
    let elector = Elector::new(client, Config::new("operators".into(), "operator-a".into()));
    let held = elector.try_acquire_or_renew().await;
    drop(elector);
    verify(server).await;
    held
}

#[tokio::test]
async fn an_absent_lease_is_created_with_this_replica_as_holder() {
    let script = vec![
        Expect::get(LEASE).not_found(),
        Expect::post(LEASES).check(|body| {
            assert_eq!(body["spec"]["holderIdentity"], "operator-a");
            assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
            assert_eq!(body["spec"]["leaseTransitions"], 0);
        }),
    ];
    assert!(attempt(script).await.expect("no error"));
}

#[tokio::test]
async fn a_live_lease_of_another_replica_is_left_alone() {
    let script = vec![Expect::get(LEASE).reply(200, lease("operator-b", 3))];
    assert!(!attempt(script).await.expect("no error"));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let script = vec![
        Expect::get(LEASE).reply(200, lease("operator-b", 60)),
        Expect::put(LEASE).check(|body| {
            assert_eq!(body["spec"]["holderIdentity"], "operator-a");
            assert_eq!(body["spec"]["leaseTransitions"], 3);
            assert_eq!(
                body["metadata"]["resourceVersion"], "41",
                "an optimistic write"
            );
        }),
    ];
    assert!(attempt(script).await.expect("no error"));
}

#[tokio::test]
async fn the_holder_renews_its_lease() {
    let script = vec![
        Expect::get(LEASE).reply(200, lease("operator-a", 5)),
        Expect::put(LEASE).check(|body| {
            assert_eq!(body["spec"]["holderIdentity"], "operator-a");
            assert_eq!(
                body["spec"]["leaseTransitions"], 2,
                "a renewal is no transition"
            );
            let renewed: Timestamp = body["spec"]["renewTime"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("a renewTime");
            assert!(Timestamp::now().duration_since(renewed) < SignedDuration::from_secs(2));
        }),
    ];
    assert!(attempt(script).await.expect("no error"));
}

#[tokio::test]
async fn losing_the_race_for_an_expired_lease_is_not_leading() {
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "the object has been modified"});
    let script = vec![
        Expect::get(LEASE).reply(200, lease("operator-b", 60)),
        Expect::put(LEASE).reply(409, conflict),
    ];
    assert!(!attempt(script).await.expect("no error"));
}

#[tokio::test]
async fn a_failed_renewal_is_an_error_so_the_leader_steps_down() {
    let unavailable = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "ServiceUnavailable", "code": 503, "message": "etcd timeout"});
    let script = vec![
        Expect::get(LEASE).reply(200, lease("operator-a", 5)),
        Expect::put(LEASE).reply(503, unavailable),
    ];
    assert!(attempt(script).await.is_err());
}

#[test]
fn a_lease_without_a_holder_is_free() {
    let now = Timestamp::now();
    assert_eq!(decide(None, "a", now), Decision::TakeOver);
    let spec = LeaseSpec::default();
    assert_eq!(decide(Some(&spec), "a", now), Decision::TakeOver);
}

async fn release(script: Vec<Expect>) {
    let (client, server) = pair();
    let server = server.run(script);
    let elector = Elector::new(client, Config::new("operators".into(), "operator-a".into()));
    elector.release().await.expect("released");
    drop(elector);
    verify(server).await;
}

#[tokio::test]
async fn releasing_clears_the_holder_so_a_standby_takes_over_at_once() {
    release(vec![
        Expect::get(LEASE).reply(200, lease("operator-a", 1)),
        Expect::put(LEASE).check(|body| {
            assert_eq!(body["spec"].get("holderIdentity"), None, "{body}");
            assert_eq!(body["metadata"]["resourceVersion"], "41");
        }),
    ])
    .await;
}

#[tokio::test]
async fn releasing_a_lease_held_by_another_replica_changes_nothing() {
    release(vec![Expect::get(LEASE).reply(200, lease("operator-b", 1))]).await;
}
