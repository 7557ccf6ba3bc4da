//! validate() on the fixtures: the valid ones pass with the right parsed values, and each
//! invalid case (an inline merge patch on a valid fixture) is refused naming the field.

use super::*;
use crate::fixtures::{patched, valid};

#[test]
fn accepts_the_small_fixture_with_defaults_filled_in() {
    let spec = valid("valid-small", "{}");
    assert_eq!(spec.name, "small");
    assert_eq!(spec.image, "ghcr.io/mzchat/mzchatd:0.1.0");
    assert_eq!(spec.keys_secret, "small-keys");
    assert!(spec.generates_keys());
    assert_eq!(spec.scaling(Service::Guild), &Scaling::Fixed(1));
    assert_eq!(spec.egress.nats, [4222]);
    assert_eq!(spec.egress.object_store, 8333);
    assert_eq!(spec.egress.otlp, None);
    assert!(!spec.insecure_dev());
}

#[test]
fn accepts_the_production_fixture() {
    let spec = valid("valid-production", "{}");
    assert_eq!(spec.keys_secret, "chat-keys");
    assert_eq!(
        spec.scaling(Service::Guild),
        &Scaling::Cpu {
            min: 3,
            max: 20,
            target_percent: 60
        }
    );
    assert_eq!(
        spec.scaling(Service::FederationSync),
        &Scaling::Backlog {
            min: 2,
            max: 8,
            jobs_per_replica: 1000,
            initial: 2
        }
    );
    assert_eq!(spec.egress.nats, [4222]);
    assert_eq!(spec.egress.object_store, 443);
    assert_eq!(spec.egress.otlp, Some(4317));
}

#[test]
fn accepts_the_servers_of_a_nats_cluster() {
    let spec = valid(
        "valid-small",
        "spec: {nats: {url: 'nats://a:4222, nats://b:4222,tls://c:4443'}}",
    );
    assert_eq!(spec.egress.nats, [4222, 4443]);
}

#[test]
fn accepts_the_gateway_fixture_and_normalises_origins() {
    let spec = valid("valid-gateway", "{}");
    assert_eq!(spec.origin.to_string(), "https://chat.example.org:8443");
    assert_eq!(spec.spec.nats.stream_replicas, 3, "the CRD default");
    assert_eq!(spec.scaling(Service::Media), &Scaling::Fixed(2));
}

#[test]
fn accepts_http_origins_on_localhost_for_development() {
    let spec = valid(
        "valid-small",
        "spec: {origin: 'http://localhost:7600', assetsOrigin: 'http://localhost:7601', route: null}",
    );
    assert!(spec.insecure_dev());
}

#[test]
fn ignores_the_url_key_with_a_database_per_service() {
    valid(
        "valid-small",
        "spec: {database: {layout: DatabasePerService, urlSecretRef: {key: null}}}",
    );
}

#[test]
fn defaults_to_no_rate_limits_and_one_proxy_in_front() {
    let spec = valid("valid-small", "{}");
    assert!(spec.spec.rate_limits.is_empty());
    assert_eq!(
        spec.spec.forwarded_for_hops, 1,
        "the route's Ingress or Gateway"
    );
}

#[test]
fn accepts_every_limit_name_rules_off_and_all_off() {
    let spec = valid(
        "valid-small",
        "spec: {forwardedForHops: 0, rateLimits: {all: 'off', message.send: 30/10s, typing: ' off ', \
         invite.create: 5/1m, guild.join: 1/24h, login: 3/h, upload: 100/1h, federation: 2000/10s, \
         push.relay: 'off', ip.login: 60/1m, ip.invite: 120/60s, ip.server_info: 300/1m, \
         ip.sync_mailbox: ' 120 / 1m '}}",
    );
    assert_eq!(spec.spec.rate_limits.len(), 13);
    assert_eq!(spec.spec.forwarded_for_hops, 0);
    valid("valid-small", "spec: {forwardedForHops: 10}");
}

#[test]
fn accepts_the_examples_in_deploy() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("deploy/examples") {
        let text = std::fs::read_to_string(entry.expect("an entry").path()).expect("a file");
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("YAML");
        for mut doc in docs.into_iter().filter(|d| d["kind"] == "Homeserver") {
            doc["metadata"]["namespace"] = "chat".into();
            doc["metadata"]["uid"] = "6b1c2d3e-0000-4000-8000-00000000000e".into();
            let hs: Homeserver = serde_json::from_value(doc).expect("a Homeserver");
            validate(&hs).unwrap_or_else(|e| panic!("{:?}: {e:?}", hs.metadata.name));
            checked += 1;
        }
    }
    assert!(checked >= 2, "found {checked} example Homeservers");
}

/// Each invalid case: the fixture, a merge patch, the field reported and part of its message.
macro_rules! refuses {
    ($($test:ident: $fixture:literal, $patch:literal => $field:literal, $message:literal;)*) => {
        $(
            #[test]
            fn $test() {
                assert_refused($fixture, $patch, $field, $message);
            }
        )*
    };
}

fn assert_refused(fixture: &str, patch: &str, field: &str, message: &str) {
    let errors = validate(&patched(fixture, patch)).expect_err("the spec is invalid");
    assert!(
        errors
            .iter()
            .any(|e| e.field == field && e.message.contains(message)),
        "wanted {field}: ..{message}.., got {errors:?}"
    );
}

refuses! {
    refuses_http_origin: "valid-small", "spec: {origin: 'http://chat.example.org'}"
        => "spec.origin", "must start with https://";
    refuses_origin_with_a_path: "valid-small", "spec: {origin: 'https://chat.example.org/api'}"
        => "spec.origin", "no path";
    refuses_origin_with_a_trailing_slash: "valid-small", "spec: {origin: 'https://chat.example.org/'}"
        => "spec.origin", "trailing slash";
    refuses_origin_without_scheme: "valid-small", "spec: {origin: chat.example.org}"
        => "spec.origin", "https://";
    refuses_origin_with_a_bad_port: "valid-small", "spec: {origin: 'https://chat.example.org:99999'}"
        => "spec.origin", "port";
    refuses_origin_with_credentials: "valid-small", "spec: {origin: 'https://me@chat.example.org'}"
        => "spec.origin", "credentials";
    refuses_origin_with_an_ipv6_literal: "valid-small", "spec: {origin: 'https://[2001:db8::1]'}"
        => "spec.origin", "IPv6";
    refuses_origin_with_a_bad_host: "valid-small", "spec: {origin: 'https://chat_example.org'}"
        => "spec.origin", "DNS name";
    refuses_http_assets_origin: "valid-small", "spec: {assetsOrigin: 'http://media.example.org'}"
        => "spec.assetsOrigin", "https://";
    refuses_assets_origin_equal_to_the_origin: "valid-small", "spec: {assetsOrigin: 'https://CHAT.example.org:443'}"
        => "spec.assetsOrigin", "must differ";
    refuses_assets_origin_on_the_origin_s_host: "valid-small", "spec: {assetsOrigin: 'https://chat.example.org:8443'}"
        => "spec.assetsOrigin", "host other than";
    refuses_routed_origin_with_an_ip: "valid-small", "spec: {origin: 'https://192.0.2.10'}"
        => "spec.origin", "IP address";
    refuses_version_with_build_metadata: "valid-small", "spec: {version: 0.1.0+build.1}"
        => "spec.version", "no '+build'";
    refuses_empty_version: "valid-small", "spec: {version: ''}"
        => "spec.version", "must be a version";
    refuses_version_with_a_space: "valid-small", "spec: {version: 'v1 beta'}"
        => "spec.version", "must be a version";
    refuses_repository_with_a_tag: "valid-small", "spec: {image: {repository: 'ghcr.io/mzchat/mzchatd:0.1.0'}}"
        => "spec.image.repository", "without tag";
    refuses_bad_image_tag: "valid-small", "spec: {image: {tag: '.latest'}}"
        => "spec.image.tag", "image tag";
    refuses_bad_pull_secret: "valid-small", "spec: {image: {pullSecrets: [Ghcr_Pull]}}"
        => "spec.image.pullSecrets[0]", "Secret name";
    refuses_negative_replicas: "valid-small", "spec: {services: {guild: {replicas: -1}}}"
        => "spec.services.guild.replicas", "0 or more";
    refuses_autoscaling_from_zero: "valid-small", "spec: {services: {media: {autoscaling: {minReplicas: 0, maxReplicas: 3}}}}"
        => "spec.services.media.autoscaling.minReplicas", "at least 1";
    refuses_max_below_min: "valid-production", "spec: {services: {guild: {autoscaling: {minReplicas: 5, maxReplicas: 4}}}}"
        => "spec.services.guild.autoscaling.maxReplicas", "less than minReplicas";
    refuses_max_below_min_for_federation_sync: "valid-production", "spec: {services: {federationSync: {autoscaling: {minReplicas: 9}}}}"
        => "spec.services.federationSync.autoscaling.maxReplicas", "less than minReplicas";
    refuses_cpu_target_above_100: "valid-production", "spec: {services: {guild: {autoscaling: {targetCPUUtilizationPercentage: 150}}}}"
        => "spec.services.guild.autoscaling.targetCPUUtilizationPercentage", "between 1 and 100";
    refuses_cpu_target_of_0: "valid-production", "spec: {services: {federationSync: {autoscaling: {targetCPUUtilizationPercentage: 0}}}}"
        => "spec.services.federationSync.autoscaling.targetCPUUtilizationPercentage", "between 1 and 100";
    refuses_backlog_target_of_0: "valid-production", "spec: {services: {federationSync: {autoscaling: {targetJobBacklog: 0}}}}"
        => "spec.services.federationSync.autoscaling.targetJobBacklog", "at least 1";
    refuses_schema_per_service_without_a_key: "valid-small", "spec: {database: {urlSecretRef: {key: null}}}"
        => "spec.database.urlSecretRef.key", "required with layout SchemaPerService";
    refuses_bad_database_secret_key: "valid-small", "spec: {database: {urlSecretRef: {key: 'db/url'}}}"
        => "spec.database.urlSecretRef.key", "Secret key";
    refuses_bad_database_secret_name: "valid-production", "spec: {database: {urlSecretRef: {name: 'Chat DB'}}}"
        => "spec.database.urlSecretRef.name", "Secret name";
    refuses_no_database_connections: "valid-small", "spec: {database: {maxConnections: 0}}"
        => "spec.database.maxConnections", "between 1 and 1000";
    refuses_token_policy_without_tokens: "valid-small", "spec: {registration: {policy: Token}}"
        => "spec.registration.tokensSecretRef", "required with policy Token";
    refuses_tokens_with_policy_open: "valid-small", "spec: {registration: {tokensSecretRef: {name: t, key: tokens}}}"
        => "spec.registration.tokensSecretRef", "only used with policy Token";
    refuses_tokens_with_policy_closed: "valid-production", "spec: {registration: {policy: Closed}}"
        => "spec.registration.tokensSecretRef", "policy is Closed";
    refuses_ingress_and_gateway: "valid-small", "spec: {route: {gateway: {parentRefs: [{name: public}]}}}"
        => "spec.route", "not both";
    refuses_empty_route: "valid-small", "spec: {route: {ingress: null}}"
        => "spec.route", "set ingress or gateway";
    refuses_gateway_without_parents: "valid-gateway", "spec: {route: {gateway: {parentRefs: []}}}"
        => "spec.route.gateway.parentRefs", "at least one Gateway";
    refuses_gateway_in_a_bad_namespace: "valid-gateway", "spec: {route: {gateway: {parentRefs: [{name: public, namespace: Gateway.System}]}}}"
        => "spec.route.gateway.parentRefs[0].namespace", "namespace name";
    refuses_gateway_with_a_bad_listener: "valid-gateway", "spec: {route: {gateway: {parentRefs: [{name: public, sectionName: HTTPS}]}}}"
        => "spec.route.gateway.parentRefs[0].sectionName", "listener name";
    refuses_bad_ingress_class: "valid-production", "spec: {route: {ingress: {className: 'Nginx Public'}}}"
        => "spec.route.ingress.className", "IngressClass";
    refuses_bad_tls_secret: "valid-production", "spec: {route: {ingress: {tlsSecretName: chat_tls}}}"
        => "spec.route.ingress.tlsSecretName", "Secret name";
    refuses_two_federation_patterns_in_one: "valid-small", "spec: {federation: {allow: ['a.example,b.example']}}"
        => "spec.federation.allow[0]", "must be an origin";
    refuses_federation_origin_with_a_path: "valid-small", "spec: {federation: {deny: ['https://a.example/x']}}"
        => "spec.federation.deny[0]", "no path";
    refuses_bare_wildcard: "valid-small", "spec: {federation: {deny: ['*.']}}"
        => "spec.federation.deny[0]", "must be an origin";
    refuses_allowed_and_denied: "valid-small", "spec: {federation: {allow: ['*.example.org'], deny: ['*.EXAMPLE.org']}}"
        => "spec.federation.deny[0]", "in both allow and deny";
    refuses_allowed_and_denied_origin: "valid-small", "spec: {federation: {allow: ['https://a.example:443'], deny: ['https://a.example']}}"
        => "spec.federation.deny[0]", "in both allow and deny";
    refuses_name_too_long: "valid-small", "metadata: {name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}"
        => "metadata.name", "at most 47";
    refuses_name_starting_with_a_digit: "valid-small", "metadata: {name: 1chat}"
        => "metadata.name", "starting with a letter";
    refuses_name_with_a_dot: "valid-small", "metadata: {name: chat.example}"
        => "metadata.name", "starting with a letter";
    refuses_no_uid: "valid-small", "metadata: {uid: null}"
        => "metadata.uid", "not read from the API server";
    refuses_no_namespace: "valid-small", "metadata: {namespace: null}"
        => "metadata.namespace", "missing";
    refuses_nats_over_http: "valid-small", "spec: {nats: {url: 'http://nats.nats:4222'}}"
        => "spec.nats.url", "must start with nats://";
    refuses_a_nats_url_without_scheme: "valid-small", "spec: {nats: {url: 'nats.nats:4222'}}"
        => "spec.nats.url", "must be a URL";
    refuses_a_bad_url_in_a_nats_list: "valid-small", "spec: {nats: {url: 'nats://a:4222, http://b:4222'}}"
        => "spec.nats.url", "must start with nats://";
    refuses_too_many_stream_replicas: "valid-small", "spec: {nats: {streamReplicas: 7}}"
        => "spec.nats.streamReplicas", "1 to 5";
    refuses_bad_nats_credentials_key: "valid-production", "spec: {nats: {credentialsSecretRef: {key: 'nats creds'}}}"
        => "spec.nats.credentialsSecretRef.key", "Secret key";
    refuses_bad_bucket: "valid-small", "spec: {objectStore: {bucket: My_Bucket}}"
        => "spec.objectStore.bucket", "bucket name";
    refuses_bad_region: "valid-small", "spec: {objectStore: {region: 'eu west'}}"
        => "spec.objectStore.region", "region name";
    refuses_store_endpoint_with_a_path: "valid-small", "spec: {objectStore: {endpoint: 'https://s3.example.org/media'}}"
        => "spec.objectStore.endpoint", "no path";
    refuses_store_endpoint_without_scheme: "valid-small", "spec: {objectStore: {endpoint: 's3.example.org'}}"
        => "spec.objectStore.endpoint", "https://";
    refuses_ambient_s3_credentials: "valid-small", "spec: {objectStore: {credentialsSecretRef: null}}"
        => "spec.objectStore.credentialsSecretRef", "ambient credentials";
    refuses_bad_keys_secret: "valid-production", "spec: {keys: {secretName: '-keys'}}"
        => "spec.keys.secretName", "Secret name";
    refuses_otlp_endpoint_without_scheme: "valid-production", "spec: {telemetry: {otlpEndpoint: 'otel-collector:4317'}}"
        => "spec.telemetry.otlpEndpoint", "OTLP/gRPC endpoint";
    refuses_unknown_rate_limit: "valid-small", "spec: {rateLimits: {message.sned: 30/10s}}"
        => "spec.rateLimits[\"message.sned\"]", "unknown limit; known: all, message.send, typing,";
    refuses_rate_limit_without_a_period: "valid-small", "spec: {rateLimits: {login: '10'}}"
        => "spec.rateLimits[\"login\"]", "\"10\": expected COUNT/PERIOD";
    refuses_rate_limit_of_zero: "valid-small", "spec: {rateLimits: {login: 0/1m}}"
        => "spec.rateLimits[\"login\"]", "at least 1 (use off";
    refuses_rate_limit_in_days: "valid-small", "spec: {rateLimits: {upload: 10/1d}}"
        => "spec.rateLimits[\"upload\"]", "s, m or h";
    refuses_rate_limit_over_a_day: "valid-small", "spec: {rateLimits: {upload: 10/25h}}"
        => "spec.rateLimits[\"upload\"]", "between 1s and 24h";
    refuses_rate_limit_with_a_second_setting: "valid-small", "spec: {rateLimits: {typing: '5/1m,login=off'}}"
        => "spec.rateLimits[\"typing\"]", "s, m or h";
    refuses_all_with_a_rule: "valid-small", "spec: {rateLimits: {all: 10/1s}}"
        => "spec.rateLimits[\"all\"]", "takes only off";
    refuses_negative_forwarded_for_hops: "valid-small", "spec: {forwardedForHops: -1}"
        => "spec.forwardedForHops", "is -1; it is the number of proxies";
    refuses_too_many_forwarded_for_hops: "valid-small", "spec: {forwardedForHops: 11}"
        => "spec.forwardedForHops", "between 0 and 10";
    refuses_bad_fcm_key: "valid-production", "spec: {push: {fcmCredentialsSecretRef: {key: 'a:b'}}}"
        => "spec.push.fcmCredentialsSecretRef.key", "Secret key";
}

#[test]
fn reports_every_problem_at_once() {
    let hs = patched(
        "valid-small",
        "spec: {origin: 'http://x.example', version: '', registration: {policy: Token}, nats: {streamReplicas: 0}}",
    );
    let errors = validate(&hs).expect_err("invalid");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.origin",
            "spec.version",
            "spec.registration.tokensSecretRef",
            "spec.nats.streamReplicas"
        ]
    );
}

#[test]
fn rate_limit_messages_name_the_limit_and_the_known_ones() {
    let hs = patched("valid-small", "spec: {rateLimits: {message.sned: 30/10s}}");
    let errors = validate(&hs).expect_err("invalid");
    assert_eq!(
        errors[0].to_string(),
        "spec.rateLimits[\"message.sned\"]: unknown limit; known: all, message.send, typing, \
         invite.create, guild.join, login, upload, federation, push.relay, ip.login, ip.invite, \
         ip.server_info, ip.sync_mailbox"
    );
}

#[test]
fn messages_start_with_the_field() {
    let hs = patched("valid-small", "spec: {nats: {streamReplicas: 0}}");
    let errors = validate(&hs).expect_err("invalid");
    assert_eq!(
        errors[0].to_string(),
        "spec.nats.streamReplicas: is 0; JetStream keeps 1 to 5 replicas of a stream (1 for a single server)"
    );
}
