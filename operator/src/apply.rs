//! The pipeline's writes: server-side apply of built objects, the keys Secret created once, and
//! whether optional CRDs (prometheus-operator, Gateway API) exist in the cluster.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build::keys::keys_secret;
use crate::validate::ValidSpec;

/// The field manager of every apply: the operator owns the fields it sets, and `force` takes
/// them back from anyone who edited them by hand.
pub const FIELD_MANAGER: &str = "mzchat-operator";

pub fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Server-side applies a namespaced object; the object as the API server now has it.
pub async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<K, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(&name, &apply_params(), &Patch::Apply(object))
        .await
}

/// Server-side applies an object of a kind this crate has no type for.
pub async fn apply_dynamic(
    client: &Client,
    namespace: &str,
    object: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    let types = object.types.clone().unwrap_or_default();
    let (group, version) = types
        .api_version
        .split_once('/')
        .unwrap_or(("", types.api_version.as_str()));
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &types.kind));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let name = object.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &apply_params(), &Patch::Apply(object))
        .await
}

/// Creates `<name>-keys` with a fresh random token when it does not exist. An existing Secret
/// is never touched: pods already use its token.
pub async fn ensure_keys_secret(client: &Client, spec: &ValidSpec) -> Result<(), kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &spec.namespace);
    if !spec.generates_keys() || api.get_opt(&spec.keys_secret).await?.is_some() {
        return Ok(());
    }
    let Some(secret) = keys_secret(spec, &random_token()) else {
        return Ok(());
    };
    match api.create(&PostParams::default(), &secret).await {
        // another operator replica (or a retry) made it first: keep that token
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// 32 random bytes, hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // getrandom fails only where the OS has no entropy source; a zero token would be worse
    // than no token, so fall back to a hash of the time and address space layout
    if getrandom::getrandom(&mut bytes).is_err() {
        use sha2::{Digest, Sha256};
        let seed = format!("{:?}{:p}", std::time::SystemTime::now(), &bytes);
        bytes.copy_from_slice(&Sha256::digest(seed.as_bytes()));
    }
    hex::encode(bytes)
}

/// Whether the CustomResourceDefinition `name` (e.g. `servicemonitors.monitoring.coreos.com`)
/// is installed.
pub async fn crd_exists(client: &Client, name: &str) -> Result<bool, kube::Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    Ok(api.get_opt(name).await?.is_some())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (super::random_token(), super::random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
