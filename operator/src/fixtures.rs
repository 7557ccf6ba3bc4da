//! Homeservers for the pure stages' tests: YAML files under tests/fixtures, optionally changed
//! by an inline JSON merge patch (RFC 7386) written in YAML, so each case states only what it
//! changes.

use std::path::Path;

use serde_json::Value;

use crate::crd::Homeserver;
use crate::validate::{ValidSpec, validate};

/// The fixture `tests/fixtures/<name>.yaml` as JSON.
pub fn value(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).expect("the fixture exists");
    serde_saphyr::from_str(&text).expect("the fixture is YAML")
}

/// The fixture with `patch` (YAML) merged in; `null` removes a field.
pub fn patched(name: &str, patch: &str) -> Homeserver {
    let mut doc = value(name);
    let patch: Value = serde_saphyr::from_str(patch).expect("the patch is YAML");
    merge(&mut doc, &patch);
    serde_json::from_value(doc).expect("the patched fixture is a Homeserver")
}

/// A fixture that must be valid.
pub fn valid(name: &str, patch: &str) -> ValidSpec {
    let hs = patched(name, patch);
    validate(&hs).unwrap_or_else(|errors| panic!("{name} + {patch} is invalid: {errors:?}"))
}

fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(fields) = target {
        for (key, change) in changes {
            if change.is_null() {
                fields.remove(key);
            } else {
                merge(fields.entry(key.clone()).or_insert(Value::Null), change);
            }
        }
    }
}
