//! The `<name>-keys` Secret with the internal service-to-service token, made when spec.keys
//! names none. The token is random, so it is an input: the apply stage generates it and creates
//! the Secret only when it does not exist yet, never replacing a token pods already use.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;

use crate::validate::ValidSpec;

use super::env::INTERNAL_TOKEN_KEY;
use super::meta::object_meta;

/// None when spec.keys names an existing Secret.
pub fn keys_secret(spec: &ValidSpec, internal_token: &str) -> Option<Secret> {
    spec.generates_keys().then(|| Secret {
        metadata: object_meta(spec, spec.keys_secret.clone(), Some("keys")),
        type_: Some("Opaque".to_owned()),
        string_data: Some(BTreeMap::from([(
            INTERNAL_TOKEN_KEY.to_owned(),
            internal_token.to_owned(),
        )])),
        ..Secret::default()
    })
}
