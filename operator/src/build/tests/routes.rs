//! The public route (Ingress or Gateway API), the ServiceMonitor and the migration Job.

use super::build;
use crate::build::job::job_name;
use crate::build::route::NGINX_BACKEND_PROTOCOL;
use crate::fixtures::valid;

#[test]
fn the_grpc_ingress_sends_each_grpc_service_to_its_owner() {
    let (_, desired) = build("valid-production", "{}");
    assert!(desired.gateway_routes.is_empty());
    let [grpc, assets] = &desired.ingresses[..] else {
        panic!("two Ingresses, got {}", desired.ingresses.len());
    };
    let annotations = grpc.metadata.annotations.as_ref().expect("annotations");
    assert_eq!(annotations[NGINX_BACKEND_PROTOCOL], "GRPC");
    assert_eq!(annotations["cert-manager.io/cluster-issuer"], "letsencrypt");
    let spec = grpc.spec.as_ref().expect("spec");
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let tls = &spec.tls.as_deref().unwrap_or_default()[0];
    assert_eq!(
        tls.hosts.as_deref(),
        Some(&["chat.example.org".to_owned()][..])
    );
    let rule = &spec.rules.as_deref().unwrap_or_default()[0];
    assert_eq!(rule.host.as_deref(), Some("chat.example.org"));
    let routes: Vec<(String, String)> = rule
        .http
        .iter()
        .flat_map(|h| &h.paths)
        .map(|p| {
            let backend = p.backend.service.as_ref().expect("a Service backend");
            assert_eq!(
                backend.port.as_ref().and_then(|p| p.name.as_deref()),
                Some("grpc")
            );
            (p.path.clone().unwrap_or_default(), backend.name.clone())
        })
        .collect();
    assert!(routes.contains(&(
        "/mzchat.guild.v1.MessageService".into(),
        "chat-guild".into()
    )));
    assert!(routes.contains(&(
        "/mzchat.federation.v1.IdentityFederationService".into(),
        "chat-identity".into()
    )));
    assert!(routes.contains(&(
        "/mzchat.federation.v1.PushFederationService".into(),
        "chat-push-relay".into()
    )));
    assert!(routes.contains(&("/mzchat.media.v1.MediaService".into(), "chat-media".into())));
    assert!(
        !routes
            .iter()
            .any(|(path, _)| path.contains("Internal") || path.contains("Admin"))
    );
    let annotations = assets.metadata.annotations.as_ref().expect("annotations");
    assert!(
        !annotations.contains_key(NGINX_BACKEND_PROTOCOL),
        "assets are plain HTTP"
    );
    let rule = &assets
        .spec
        .as_ref()
        .and_then(|s| s.rules.clone())
        .unwrap_or_default()[0];
    assert_eq!(rule.host.as_deref(), Some("media.example.org"));
    let path = &rule.http.as_ref().expect("http").paths[0];
    let backend = path.backend.service.as_ref().expect("media");
    assert_eq!(backend.name, "chat-media");
    assert_eq!(
        backend.port.as_ref().and_then(|p| p.name.as_deref()),
        Some("assets")
    );
}

#[test]
fn the_gateway_route_matches_grpc_methods_and_the_assets_host() {
    let (_, desired) = build("valid-gateway", "{}");
    assert!(desired.ingresses.is_empty());
    let [grpc, assets] = &desired.gateway_routes[..] else {
        panic!("a GRPCRoute and an HTTPRoute");
    };
    let kind = |o: &kube::api::DynamicObject| {
        o.types
            .as_ref()
            .map(|t| (t.api_version.clone(), t.kind.clone()))
    };
    assert_eq!(
        kind(grpc),
        Some(("gateway.networking.k8s.io/v1".into(), "GRPCRoute".into()))
    );
    assert_eq!(
        kind(assets),
        Some(("gateway.networking.k8s.io/v1".into(), "HTTPRoute".into()))
    );
    let spec = &grpc.data["spec"];
    assert_eq!(spec["hostnames"], serde_json::json!(["chat.example.org"]));
    assert_eq!(spec["parentRefs"][0]["namespace"], "gateway-system");
    assert_eq!(spec["parentRefs"][0]["sectionName"], "https");
    let rules = spec["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 4, "identity, guild, push-relay, media");
    assert_eq!(rules[1]["backendRefs"][0]["name"], "gw-guild");
    assert_eq!(
        rules[1]["matches"][0]["method"]["service"],
        "mzchat.guild.v1.GuildService"
    );
    let spec = &assets.data["spec"];
    assert_eq!(spec["hostnames"], serde_json::json!(["media.example.org"]));
    assert_eq!(spec["rules"][0]["backendRefs"][0]["port"], 7601);
}

#[test]
fn the_service_monitor_scrapes_every_services_admin_port() {
    let (_, desired) = build("valid-small", "{}");
    let monitor = &desired.service_monitor;
    let types = monitor.types.as_ref().expect("types");
    assert_eq!(types.kind, "ServiceMonitor");
    let spec = &monitor.data["spec"];
    assert_eq!(
        spec["selector"]["matchLabels"]["app.kubernetes.io/instance"],
        "small"
    );
    assert!(
        spec["selector"]["matchLabels"]
            .get("app.kubernetes.io/component")
            .is_none()
    );
    assert_eq!(spec["endpoints"][0]["port"], "admin");
}

#[test]
fn the_migration_job_is_named_for_its_version_and_migrates_each_database() {
    let (_, small) = build("valid-small", "{}");
    let job = &small.migration;
    assert_eq!(job.metadata.name.as_deref(), Some("small-migrate-0.1.0"));
    let spec = job.spec.as_ref().expect("spec");
    assert_eq!(spec.backoff_limit, Some(3));
    assert!(spec.ttl_seconds_after_finished.is_some());
    let pod = spec.template.spec.as_ref().expect("pod");
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert!(pod.init_containers.is_none());
    assert_eq!(
        pod.containers[0].args.as_deref(),
        Some(&["migrate".to_owned()][..])
    );
    let (_, production) = build("valid-production", "{}");
    let pod = production
        .migration
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod");
    let runs: Vec<(String, Vec<String>)> = pod
        .init_containers
        .iter()
        .flatten()
        .chain(&pod.containers)
        .map(|c| {
            let url = c
                .env
                .iter()
                .flatten()
                .find(|e| e.name == "MZCHAT_DATABASE_URL")
                .expect("a URL");
            let key = url
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .expect("a Secret")
                .key
                .clone();
            (key, c.args.clone().unwrap_or_default())
        })
        .collect();
    // Each database gets only its own service's migrations.
    let expected = [
        ("identity", "identity"),
        ("guild", "guild"),
        ("federation", "federation-sync"),
        ("push", "push-relay"),
        ("media", "media"),
    ]
    .map(|(key, service)| {
        (
            key.to_owned(),
            vec!["migrate".to_owned(), "--service".into(), service.into()],
        )
    });
    assert_eq!(runs, expected);
}

#[test]
fn job_names_fall_back_to_a_hash_when_the_version_does_not_fit() {
    let long_name = "a".repeat(47);
    let patch = format!("{{metadata: {{name: {long_name}}}, spec: {{version: 1.2.3-rc.4}}}}");
    let spec = valid("valid-small", &patch);
    let name = job_name(&spec);
    assert!(name.len() <= 63, "{name}");
    assert!(name.starts_with(&format!("{long_name}-migrate-")));
    let other = valid(
        "valid-small",
        &format!("{{metadata: {{name: {long_name}}}, spec: {{version: 1.2.3-rc.5}}}}"),
    );
    assert_ne!(job_name(&other), name, "versions keep distinct Jobs");
    let upper = valid("valid-small", "spec: {version: Nightly_1}");
    assert!(
        !job_name(&upper).contains("Nightly"),
        "not a DNS name: hashed"
    );
}
