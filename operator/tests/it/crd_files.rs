//! The committed CRD files are what the Rust types generate, so a change to `crd.rs` without
//! `make crds` fails `make test` instead of shipping a stale schema.

use std::path::Path;

fn assert_current(relative: &str) {
    let expected = mzchat_operator::crd::crd_yaml().expect("the CRD serializes");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {relative} ({err}): run `make crds`"));
    assert!(
        committed == expected,
        "{relative} is stale: run `make crds` and commit the result"
    );
}

#[test]
fn deploy_crds_holds_the_generated_crd() {
    assert_current("deploy/crds/mzchat.io_homeservers.yaml");
}

#[test]
fn the_operator_chart_holds_the_same_crd() {
    assert_current("charts/mzchat-operator/crds/homeservers.yaml");
}
