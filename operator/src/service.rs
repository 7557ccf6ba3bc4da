//! The five mzchatd services as the operator runs them: names, ports, database keys and which
//! gRPC services the public route sends to each.

/// Public gRPC and gRPC-Web (and the internal APIs, which refuse calls without the token).
pub const GRPC_PORT: i32 = 7600;
/// media's assets origin: files over plain HTTP.
pub const ASSETS_PORT: i32 = 7601;
/// Prometheus metrics at /metrics, liveness at /healthz.
pub const ADMIN_PORT: i32 = 9600;

/// One mzchatd service; each runs as `mzchatd <name>` in its own Deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Identity,
    Guild,
    FederationSync,
    PushRelay,
    Media,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::Identity,
        Service::Guild,
        Service::FederationSync,
        Service::PushRelay,
        Service::Media,
    ];

    /// The mzchatd subcommand, the component label and the suffix of its objects' names.
    pub fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Guild => "guild",
            Service::FederationSync => "federation-sync",
            Service::PushRelay => "push-relay",
            Service::Media => "media",
        }
    }

    /// Where the service is configured in the Homeserver, for messages.
    pub fn field(self) -> &'static str {
        match self {
            Service::Identity => "spec.services.identity",
            Service::Guild => "spec.services.guild",
            Service::FederationSync => "spec.services.federationSync",
            Service::PushRelay => "spec.services.pushRelay",
            Service::Media => "spec.services.media",
        }
    }

    /// Its key in the database Secret with layout DatabasePerService.
    pub fn database_key(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Guild => "guild",
            Service::FederationSync => "federation",
            Service::PushRelay => "push",
            Service::Media => "media",
        }
    }

    /// The gRPC services (full names from proto/) the public origin routes to it. Internal
    /// services (`*InternalService`) and FederationAdminService are never routed from outside.
    pub fn public_grpc_services(self) -> &'static [&'static str] {
        match self {
            Service::Identity => &[
                "mzchat.identity.v1.IdentityService",
                "mzchat.identity.v1.SessionService",
                "mzchat.identity.v1.ServerInfoService",
                // inbound federation is served by the service that owns the data
                "mzchat.federation.v1.IdentityFederationService",
            ],
            Service::Guild => &[
                "mzchat.guild.v1.GuildService",
                "mzchat.guild.v1.MessageService",
                "mzchat.guild.v1.EventService",
            ],
            Service::FederationSync => &[],
            Service::PushRelay => &[
                "mzchat.push.v1.PushService",
                "mzchat.federation.v1.PushFederationService",
            ],
            Service::Media => &["mzchat.media.v1.MediaService"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every `service X` in proto/, as `package.X`.
    fn proto_services() -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/mzchat")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("proto/ is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "proto") {
                    let text = std::fs::read_to_string(&path).expect("a .proto file");
                    let package = text
                        .lines()
                        .find_map(|l| l.strip_prefix("package "))
                        .map(|p| p.trim_end_matches(';').trim().to_owned())
                        .expect("every .proto file names its package");
                    for line in text.lines() {
                        if let Some(rest) = line.strip_prefix("service ") {
                            let name = rest.split_whitespace().next().expect("a service name");
                            found.insert(format!("{package}.{name}"));
                        }
                    }
                }
            }
        }
        found
    }

    #[test]
    fn routes_every_public_grpc_service_in_proto_and_nothing_internal() {
        let all = proto_services();
        let public: BTreeSet<String> = all
            .iter()
            .filter(|s| !s.ends_with("InternalService") && !s.ends_with("AdminService"))
            .cloned()
            .collect();
        let routed: BTreeSet<String> = Service::ALL
            .iter()
            .flat_map(|s| s.public_grpc_services())
            .map(|s| s.to_string())
            .collect();
        assert_eq!(routed, public, "proto/ services and the route table differ");
    }

    #[test]
    fn object_names_fit_with_the_longest_suffix() {
        let longest = Service::ALL.iter().map(|s| s.name().len()).max();
        assert_eq!(longest, Some("federation-sync".len()));
    }
}
