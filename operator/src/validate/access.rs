//! Origins, version and image, and the policies: registration, federation, push, telemetry and
//! the public route.

use crate::crd::{HomeserverSpec, RegistrationPolicy, RouteSpec};

use super::urls::{Origin, parse_endpoint, parse_federation_pattern, parse_origin};
use super::{Errors, names};

pub(super) fn origins(spec: &HomeserverSpec, errors: &mut Errors) -> Option<(Origin, Origin)> {
    let origin = parse_origin(&spec.origin).map_err(|m| errors.add("spec.origin", m));
    let assets = parse_origin(&spec.assets_origin).map_err(|m| errors.add("spec.assetsOrigin", m));
    let (Ok(origin), Ok(assets)) = (origin, assets) else {
        return None;
    };
    if origin == assets {
        errors.add(
            "spec.assetsOrigin",
            "must differ from spec.origin: media is served from an origin of its own, so uploaded files never run as the API's origin",
        );
    } else if origin.host == assets.host && !origin.is_dev_host() {
        errors.add(
            "spec.assetsOrigin",
            format!("must have a host other than spec.origin's ({}): the route sends each host to a different service, and uploaded files must not share the API's site", origin.host),
        );
    }
    if spec.route.is_some() {
        for (field, o) in [("spec.origin", &origin), ("spec.assetsOrigin", &assets)] {
            if !o.has_dns_host() {
                errors.add(
                    field,
                    format!("{o} has an IP address, but spec.route matches requests by host name: use a DNS name"),
                );
            }
        }
    }
    Some((origin, assets))
}

/// The image reference, `repository:tag`.
pub(super) fn image(spec: &HomeserverSpec, errors: &mut Errors) -> String {
    if !names::is_version(&spec.version) {
        errors.add(
            "spec.version",
            format!("{:?} must be a version such as 0.1.0 or 0.2.0-rc.1: letters, digits, '.', '_' and '-', starting and ending with a letter or digit, at most 63 characters (no '+build' suffix: it is also an image tag and a label value)", spec.version),
        );
    }
    let image = &spec.image;
    if !names::is_image_repository(&image.repository) {
        errors.add(
            "spec.image.repository",
            format!("{:?} must be an image repository without tag or digest, e.g. ghcr.io/mzchat/mzchatd (put the tag in spec.image.tag)", image.repository),
        );
    }
    let tag = image.tag.as_deref().unwrap_or(&spec.version);
    if image.tag.is_some() && !names::is_image_tag(tag) {
        errors.add(
            "spec.image.tag",
            format!("{tag:?} must be an image tag: letters, digits, '_', '.' and '-', not starting with '.' or '-', at most 128 characters"),
        );
    }
    for (i, secret) in image.pull_secrets.iter().enumerate() {
        errors.secret_name(&format!("spec.image.pullSecrets[{i}]"), secret);
    }
    format!("{}:{tag}", image.repository)
}

pub(super) fn policies(spec: &HomeserverSpec, errors: &mut Errors) {
    registration(spec, errors);
    federation(spec, errors);
    if let Some(fcm) = spec
        .push
        .as_ref()
        .and_then(|p| p.fcm_credentials_secret_ref.as_ref())
    {
        errors.secret_name("spec.push.fcmCredentialsSecretRef.name", &fcm.name);
        errors.secret_key("spec.push.fcmCredentialsSecretRef.key", &fcm.key);
    }
    if let Some(endpoint) = &spec.telemetry.otlp_endpoint {
        let schemes = [("http", 80), ("https", 443)];
        if let Err(m) = parse_endpoint(endpoint, &schemes) {
            errors.add(
                "spec.telemetry.otlpEndpoint",
                format!(
                    "{m} (an OTLP/gRPC endpoint such as http://otel-collector.observability:4317)"
                ),
            );
        }
    }
    if let Some(route) = &spec.route {
        self::route(route, errors);
    }
}

fn registration(spec: &HomeserverSpec, errors: &mut Errors) {
    let registration = &spec.registration;
    match (registration.policy, &registration.tokens_secret_ref) {
        (RegistrationPolicy::Token, None) => errors.add(
            "spec.registration.tokensSecretRef",
            "is required with policy Token: name the Secret key holding the comma-separated registration tokens",
        ),
        (RegistrationPolicy::Token, Some(tokens)) => {
            errors.secret_name("spec.registration.tokensSecretRef.name", &tokens.name);
            errors.secret_key("spec.registration.tokensSecretRef.key", &tokens.key);
        }
        (policy, Some(_)) => errors.add(
            "spec.registration.tokensSecretRef",
            format!("is only used with policy Token (policy is {policy:?}): remove it or set policy: Token"),
        ),
        (_, None) => {}
    }
}

fn federation(spec: &HomeserverSpec, errors: &mut Errors) {
    let parse = |list: &[String], field: &str, errors: &mut Errors| -> Vec<(usize, String)> {
        list.iter()
            .enumerate()
            .filter_map(|(i, entry)| match parse_federation_pattern(entry) {
                Ok(pattern) => Some((i, pattern)),
                Err(m) => {
                    errors.add(format!("{field}[{i}]"), m);
                    None
                }
            })
            .collect()
    };
    let allow = parse(&spec.federation.allow, "spec.federation.allow", errors);
    let deny = parse(&spec.federation.deny, "spec.federation.deny", errors);
    for (i, pattern) in &deny {
        if allow.iter().any(|(_, a)| a == pattern) {
            errors.add(
                format!("spec.federation.deny[{i}]"),
                format!("{pattern:?} is in both allow and deny; deny wins, so remove it from one of them"),
            );
        }
    }
}

fn route(route: &RouteSpec, errors: &mut Errors) {
    match (&route.ingress, &route.gateway) {
        (Some(_), Some(_)) => errors.add(
            "spec.route",
            "set either ingress or gateway, not both: each origin has one route",
        ),
        (None, None) => errors.add(
            "spec.route",
            "set ingress or gateway (an empty route exposes nothing; remove route to expose nothing on purpose)",
        ),
        (Some(ingress), None) => {
            if let Some(class) = &ingress.class_name
                && !names::is_dns_subdomain(class)
            {
                errors.add("spec.route.ingress.className", format!("{class:?} is not a valid IngressClass name"));
            }
            if let Some(tls) = &ingress.tls_secret_name {
                errors.secret_name("spec.route.ingress.tlsSecretName", tls);
            }
        }
        (None, Some(gateway)) => {
            if gateway.parent_refs.is_empty() {
                errors.add(
                    "spec.route.gateway.parentRefs",
                    "is empty: name at least one Gateway the routes attach to",
                );
            }
            for (i, parent) in gateway.parent_refs.iter().enumerate() {
                let field = format!("spec.route.gateway.parentRefs[{i}]");
                if !names::is_dns_subdomain(&parent.name) {
                    errors.add(format!("{field}.name"), format!("{:?} is not a valid Gateway name", parent.name));
                }
                if let Some(ns) = &parent.namespace
                    && !names::is_rfc1123_label(ns)
                {
                    errors.add(format!("{field}.namespace"), format!("{ns:?} is not a valid namespace name"));
                }
                if let Some(section) = &parent.section_name
                    && !names::is_dns_subdomain(section)
                {
                    errors.add(format!("{field}.sectionName"), format!("{section:?} is not a valid listener name"));
                }
            }
        }
    }
}
