//! The build stage on the fixtures: what every object must have, and the properties that keep
//! a homeserver up (probes, hardening, rolls on configuration changes, scaling ownership).

mod network;
mod routes;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pod::CONFIG_CHECKSUM_ANNOTATION;
use super::*;
use crate::fixtures::valid;

fn build(fixture: &str, patch: &str) -> (ValidSpec, Desired) {
    let spec = valid(fixture, patch);
    let desired = desired(&spec, &Observed::default());
    (spec, desired)
}

fn deployment(desired: &Desired, service: Service) -> &Deployment {
    let name = service.name();
    desired
        .deployments
        .iter()
        .find(|d| {
            d.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with(name))
        })
        .expect("a Deployment per service")
}

fn pod(d: &Deployment) -> &k8s_openapi::api::core::v1::PodSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template")
}

fn env(d: &Deployment) -> &[EnvVar] {
    pod(d).containers[0].env.as_deref().unwrap_or_default()
}

fn env_value<'a>(d: &'a Deployment, name: &str) -> Option<&'a str> {
    env(d).iter().find(|e| e.name == name)?.value.as_deref()
}

/// (Secret, key) an env var comes from.
fn env_secret<'a>(d: &'a Deployment, name: &str) -> Option<(&'a str, &'a str)> {
    let source = env(d)
        .iter()
        .find(|e| e.name == name)?
        .value_from
        .as_ref()?;
    let key = source.secret_key_ref.as_ref()?;
    Some((key.name.as_str(), key.key.as_str()))
}

fn checksum(d: &Deployment) -> &str {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(CONFIG_CHECKSUM_ANNOTATION))
        .expect("a checksum annotation")
}

fn all_metadata(d: &Desired) -> Vec<&ObjectMeta> {
    let mut metas: Vec<&ObjectMeta> = Vec::new();
    metas.extend(d.deployments.iter().map(|o| &o.metadata));
    metas.extend(d.services.iter().map(|o| &o.metadata));
    metas.extend(d.autoscalers.iter().map(|o| &o.metadata));
    metas.extend(d.disruption_budgets.iter().map(|o| &o.metadata));
    metas.extend(d.network_policies.iter().map(|o| &o.metadata));
    metas.extend(d.ingresses.iter().map(|o| &o.metadata));
    metas.extend(d.gateway_routes.iter().map(|o| &o.metadata));
    metas.push(&d.migration.metadata);
    metas.push(&d.service_monitor.metadata);
    metas
}

#[test]
fn every_object_is_owned_by_the_homeserver_labelled_and_named_within_limits() {
    for fixture in ["valid-small", "valid-production", "valid-gateway"] {
        let (spec, desired) = build(fixture, "{}");
        for meta in all_metadata(&desired) {
            let name = meta.name.as_deref().expect("a name");
            assert!(name.len() <= 63, "{name} is longer than 63");
            assert_eq!(meta.namespace.as_deref(), Some(spec.namespace.as_str()));
            let owners = meta.owner_references.as_deref().unwrap_or_default();
            assert_eq!(owners.len(), 1, "{name}");
            assert_eq!(owners[0].kind, "Homeserver");
            assert_eq!(owners[0].api_version, "mzchat.io/v1alpha1");
            assert_eq!(Some(owners[0].uid.as_str()), spec.owner.uid.as_str().into());
            assert_eq!(owners[0].controller, Some(true));
            let labels = meta.labels.as_ref().expect("labels");
            assert_eq!(labels[meta::NAME_LABEL], "mzchat");
            assert_eq!(labels[meta::INSTANCE_LABEL], spec.name);
            assert_eq!(labels[meta::MANAGED_BY_LABEL], "mzchat-operator");
            assert_eq!(labels[meta::VERSION_LABEL], spec.spec.version);
        }
    }
}

#[test]
fn every_deployment_runs_its_service_hardened_probed_and_spread() {
    let (spec, desired) = build("valid-production", "{}");
    assert_eq!(desired.deployments.len(), 5);
    for service in Service::ALL {
        let d = deployment(&desired, service);
        assert_eq!(
            d.metadata.name.as_deref(),
            Some(format!("chat-{}", service.name()).as_str())
        );
        let labels = d.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels[meta::COMPONENT_LABEL], service.name());
        let pod = pod(d);
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("ghcr.io/mzchat/mzchatd:0.2.0"));
        assert_eq!(c.args.as_deref(), Some(&[service.name().to_owned()][..]));
        let readiness = c.readiness_probe.as_ref().expect("readiness");
        assert_eq!(readiness.grpc.as_ref().map(|g| g.port), Some(7600));
        let liveness = c.liveness_probe.as_ref().expect("liveness");
        let http = liveness.http_get.as_ref().expect("liveness on /healthz");
        assert_eq!(http.path.as_deref(), Some("/healthz"));
        let sc = c.security_context.as_ref().expect("container security");
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.run_as_non_root, Some(true));
        let caps = sc.capabilities.as_ref().and_then(|c| c.drop.clone());
        assert_eq!(caps, Some(vec!["ALL".to_owned()]));
        let psc = pod.security_context.as_ref().expect("pod security");
        assert_eq!(psc.run_as_non_root, Some(true));
        let seccomp = psc.seccomp_profile.as_ref().map(|p| p.type_.as_str());
        assert_eq!(seccomp, Some("RuntimeDefault"));
        let tmp = pod
            .volumes
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|v| v.name == "tmp");
        assert!(
            tmp.and_then(|v| v.empty_dir.as_ref()).is_some(),
            "an emptyDir for /tmp"
        );
        let mounts = c.volume_mounts.as_deref().unwrap_or_default();
        assert!(
            mounts
                .iter()
                .any(|m| m.name == "tmp" && m.mount_path == "/tmp")
        );
        let keys: Vec<&str> = pod
            .topology_spread_constraints
            .iter()
            .flatten()
            .map(|t| t.topology_key.as_str())
            .collect();
        assert_eq!(
            keys,
            ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        let pulls = pod.image_pull_secrets.as_deref().unwrap_or_default();
        assert_eq!(pulls.len(), 1);
        assert_eq!(checksum(d).len(), 64);
        let ports: Vec<i32> = c.ports.iter().flatten().map(|p| p.container_port).collect();
        let expected: &[i32] = if service == Service::Media {
            &[7600, 9600, 7601]
        } else {
            &[7600, 9600]
        };
        assert_eq!(ports, expected);
        let resources = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        assert!(
            resources.is_some_and(|r| r.contains_key("memory")),
            "{service:?} has requests"
        );
        assert_eq!(env_value(d, "MZCHAT_LISTEN"), Some("0.0.0.0:7600"));
        assert_eq!(
            env_value(d, "MZCHAT_ORIGIN"),
            Some(spec.origin.to_string().as_str())
        );
        assert_eq!(
            env_secret(d, "MZCHAT_INTERNAL_TOKEN"),
            Some(("chat-keys", "internalToken"))
        );
        let db = env_secret(d, "MZCHAT_DATABASE_URL");
        assert_eq!(
            db,
            Some(("chat-db", service.database_key())),
            "DatabasePerService keys"
        );
    }
}

#[test]
fn services_are_told_their_own_settings_and_peers() {
    let (_, desired) = build("valid-production", "{}");
    let identity = deployment(&desired, Service::Identity);
    assert_eq!(env_value(identity, "MZCHAT_REGISTRATION"), Some("token"));
    let tokens = env_secret(identity, "MZCHAT_REGISTRATION_TOKENS");
    assert_eq!(tokens, Some(("chat-registration", "tokens")));
    let guild_url = env_value(identity, "MZCHAT_GUILD_INTERNAL_URL");
    assert_eq!(guild_url, Some("http://chat-guild.chat.svc:7600"));
    let media = deployment(&desired, Service::Media);
    assert_eq!(env_value(media, "MZCHAT_MEDIA_STORE"), Some("s3"));
    assert_eq!(env_value(media, "MZCHAT_S3_BUCKET"), Some("mzchat-media"));
    assert_eq!(
        env_value(media, "MZCHAT_S3_ENDPOINT"),
        Some("https://s3.example.org")
    );
    assert_eq!(
        env_secret(media, "MZCHAT_S3_SECRET_ACCESS_KEY"),
        Some(("chat-s3", "secretAccessKey"))
    );
    assert_eq!(
        env_value(media, "MZCHAT_ASSETS_LISTEN"),
        Some("0.0.0.0:7601")
    );
    let push = deployment(&desired, Service::PushRelay);
    assert!(env_value(push, "MZCHAT_FCM_CREDENTIALS").is_some_and(|p| p.ends_with(".json")));
    let guild = deployment(&desired, Service::Guild);
    assert_eq!(
        env_value(guild, "MZCHAT_FCM_CREDENTIALS"),
        None,
        "FCM is push-relay's alone"
    );
    assert_eq!(env_value(guild, "MZCHAT_REGISTRATION_TOKENS"), None);
    assert_eq!(
        env_value(guild, "MZCHAT_FEDERATION_DENY"),
        Some("*.spam.example,https://abuse.example.net")
    );
    assert_eq!(
        env_value(guild, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        Some("http://otel-collector.observability:4317")
    );
    let sync = deployment(&desired, Service::FederationSync);
    assert!(env_value(sync, "MZCHAT_IDENTITY_INTERNAL_URL").is_some());
}

#[test]
fn every_service_gets_the_rate_limits_sorted_and_the_forwarded_for_hops() {
    let (_, desired) = build("valid-production", "{}");
    for service in Service::ALL {
        let d = deployment(&desired, service);
        assert_eq!(
            env_value(d, "MZCHAT_RATE_LIMITS"),
            Some("ip.login=20/1m,message.send=30/10s,typing=off"),
            "{service:?}"
        );
        assert_eq!(env_value(d, "MZCHAT_FORWARDED_FOR_HOPS"), Some("2"));
    }
    let (_, desired) = build(
        "valid-small",
        "spec: {rateLimits: {upload: ' 5/1m ', all: 'off', login: 3/h}}",
    );
    let d = deployment(&desired, Service::Media);
    assert_eq!(
        env_value(d, "MZCHAT_RATE_LIMITS"),
        Some("all=off,login=3/h,upload=5/1m"),
        "all=off first, so it lifts only the limits not named"
    );
    let (_, defaults) = build("valid-small", "{}");
    for service in Service::ALL {
        let d = deployment(&defaults, service);
        assert_eq!(
            env_value(d, "MZCHAT_RATE_LIMITS"),
            None,
            "mzchatd's defaults"
        );
        assert_eq!(
            env_value(d, "MZCHAT_FORWARDED_FOR_HOPS"),
            Some("1"),
            "behind the route"
        );
    }
    let job = &defaults
        .migration
        .spec
        .as_ref()
        .expect("a Job spec")
        .template;
    let migrate = &job.spec.as_ref().expect("a pod spec").containers[0];
    assert!(
        migrate
            .env
            .iter()
            .flatten()
            .all(|e| !e.name.starts_with("MZCHAT_RATE") && !e.name.starts_with("MZCHAT_FORWARDED")),
        "migrations serve no calls, and their Job (named by version) must not change with them"
    );
}

#[test]
fn small_homeservers_use_one_url_key_and_generate_their_keys_secret() {
    let (spec, desired) = build("valid-small", "{}");
    for service in Service::ALL {
        let d = deployment(&desired, service);
        assert_eq!(
            env_secret(d, "MZCHAT_DATABASE_URL"),
            Some(("small-db", "url"))
        );
        assert_eq!(
            env_secret(d, "MZCHAT_INTERNAL_TOKEN"),
            Some(("small-keys", "internalToken"))
        );
        assert_eq!(env_value(d, "MZCHAT_INSECURE_DEV"), None);
    }
    let secret = keys::keys_secret(&spec, "t0ken").expect("the operator makes <name>-keys");
    assert_eq!(secret.metadata.name.as_deref(), Some("small-keys"));
    assert_eq!(
        secret
            .string_data
            .as_ref()
            .map(|d| d["internalToken"].as_str()),
        Some("t0ken")
    );
    let production = valid("valid-production", "{}");
    assert!(
        keys::keys_secret(&production, "t0ken").is_none(),
        "spec.keys names one"
    );
}

#[test]
fn development_origins_turn_on_insecure_dev() {
    let (_, desired) = build(
        "valid-small",
        "spec: {origin: 'http://localhost:7600', assetsOrigin: 'http://localhost:7601', route: null}",
    );
    let d = deployment(&desired, Service::Guild);
    assert_eq!(env_value(d, "MZCHAT_INSECURE_DEV"), Some("true"));
}

#[test]
fn the_config_checksum_changes_with_a_secret_reference_or_the_version_only() {
    let sum = |patch: &str| {
        let (_, desired) = build("valid-production", patch);
        Service::ALL.map(|s| checksum(deployment(&desired, s)).to_owned())
    };
    let base = sum("{}");
    assert_eq!(base, sum("{}"), "stable");
    let moved_db = sum("spec: {database: {urlSecretRef: {name: chat-db-2}}}");
    assert!(
        base.iter().zip(&moved_db).all(|(a, b)| a != b),
        "every service reads the database"
    );
    let new_version = sum("spec: {version: 0.3.0}");
    assert!(base.iter().zip(&new_version).all(|(a, b)| a != b));
    let new_fcm = sum("spec: {push: {fcmCredentialsSecretRef: {key: other.json}}}");
    assert_ne!(base[3], new_fcm[3], "push-relay mounts the FCM key");
    assert_eq!(base[1], new_fcm[1], "guild does not");
    let limited = sum("spec: {rateLimits: {message.send: 10/10s}}");
    assert!(
        base.iter().zip(&limited).all(|(a, b)| a != b),
        "every service applies the rate limits"
    );
    let hops = sum("spec: {forwardedForHops: 1}");
    assert!(base.iter().zip(&hops).all(|(a, b)| a != b));
    let scaled = sum("spec: {services: {media: {replicas: 5}}}");
    assert_eq!(base, scaled, "replicas are not pod configuration");
}

#[test]
fn federation_sync_on_its_backlog_gets_replicas_from_the_operator_and_no_hpa() {
    let (_, desired) = build("valid-production", "{}");
    let scaled: Vec<&str> = desired
        .autoscalers
        .iter()
        .filter_map(|h| h.metadata.name.as_deref())
        .collect();
    assert_eq!(scaled, ["chat-guild"]);
    let replicas = |d: &Deployment| d.spec.as_ref().and_then(|s| s.replicas);
    assert_eq!(
        replicas(deployment(&desired, Service::FederationSync)),
        Some(2)
    );
    assert_eq!(
        replicas(deployment(&desired, Service::Guild)),
        None,
        "the HPA's"
    );
    assert_eq!(replicas(deployment(&desired, Service::Identity)), Some(2));
    let hpa = desired.autoscalers[0].spec.as_ref().expect("spec");
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(3), 20));
    let metric = hpa.metrics.as_deref().unwrap_or_default()[0]
        .resource
        .as_ref()
        .expect("cpu");
    assert_eq!(metric.target.average_utilization, Some(60));
    let spec = valid("valid-production", "{}");
    let busy = Observed {
        federation_backlog: Some(6500),
        federation_sync_replicas: Some(2),
        ..Observed::default()
    };
    let d = desired_replicas(&spec, &busy);
    assert_eq!(d, Some(7));
}

fn desired_replicas(spec: &ValidSpec, observed: &Observed) -> Option<i32> {
    let desired = desired(spec, observed);
    deployment(&desired, Service::FederationSync)
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
}

#[test]
fn federation_sync_without_a_backlog_target_gets_a_cpu_hpa() {
    let patch = "spec: {services: {federationSync: {autoscaling: {targetJobBacklog: null}}}}";
    let (_, desired) = build("valid-production", patch);
    let names: Vec<&str> = desired
        .autoscalers
        .iter()
        .filter_map(|h| h.metadata.name.as_deref())
        .collect();
    assert_eq!(names, ["chat-guild", "chat-federation-sync"]);
}

#[test]
fn disruption_budgets_only_protect_services_with_more_than_one_pod() {
    let (_, small) = build("valid-small", "{}");
    assert!(small.disruption_budgets.is_empty());
    let (_, production) = build("valid-production", "{}");
    assert_eq!(production.disruption_budgets.len(), 5);
    for pdb in &production.disruption_budgets {
        let spec = pdb.spec.as_ref().expect("spec");
        assert_eq!(
            spec.max_unavailable,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
        );
    }
}

#[test]
fn services_expose_grpc_admin_and_media_assets() {
    let (_, desired) = build("valid-small", "{}");
    for svc in &desired.services {
        let ports: Vec<&str> = svc
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .filter_map(|p| p.name.as_deref())
            .collect();
        let media = svc.metadata.name.as_deref() == Some("small-media");
        assert_eq!(
            ports,
            if media {
                vec!["grpc", "admin", "assets"]
            } else {
                vec!["grpc", "admin"]
            }
        );
    }
}
