//! `mzchat-operator render`: the objects the operator would apply for the Homeservers of a YAML
//! file, without a cluster. A dry run for administrators, and how `charts/test.sh` checks every
//! built object against Kubernetes' own schemas.

use serde_json::Value;

use crate::build::{Desired, Observed, desired};
use crate::crd::Homeserver;
use crate::validate::validate;

/// Stands in for the uid the API server would have given the Homeserver (owner references
/// need one).
const UNSAVED_UID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("not YAML: {0}")]
    Yaml(#[from] serde_saphyr::Error),
    #[error("not a Homeserver: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("Homeserver {name} is invalid:\n  {}", .problems.join("\n  "))]
    Invalid { name: String, problems: Vec<String> },
    #[error("cannot write YAML: {0}")]
    Write(serde_saphyr::ser::Error),
    #[error("no Homeserver in the input")]
    Empty,
}

/// Every object built for each Homeserver of `text` (other documents are skipped), as YAML
/// documents; Homeservers without a namespace are placed in `namespace`.
pub fn render(text: &str, namespace: &str) -> Result<String, RenderError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)?;
    let mut out = String::new();
    for doc in docs.into_iter().filter(|d| d["kind"] == "Homeserver") {
        let mut hs: Homeserver = serde_json::from_value(doc)?;
        hs.metadata
            .namespace
            .get_or_insert_with(|| namespace.to_owned());
        hs.metadata
            .uid
            .get_or_insert_with(|| UNSAVED_UID.to_owned());
        let spec = validate(&hs).map_err(|errors| RenderError::Invalid {
            name: hs.metadata.name.clone().unwrap_or_default(),
            problems: errors.iter().map(ToString::to_string).collect(),
        })?;
        for object in objects(desired(&spec, &Observed::default()))? {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(&object).map_err(RenderError::Write)?);
        }
    }
    if out.is_empty() {
        return Err(RenderError::Empty);
    }
    Ok(out)
}

fn objects(d: Desired) -> Result<Vec<Value>, serde_json::Error> {
    let mut all = Vec::new();
    all.extend(d.services.iter().map(serde_json::to_value));
    all.extend(d.network_policies.iter().map(serde_json::to_value));
    all.extend(d.disruption_budgets.iter().map(serde_json::to_value));
    all.extend(d.autoscalers.iter().map(serde_json::to_value));
    all.push(serde_json::to_value(&d.migration));
    all.extend(d.deployments.iter().map(serde_json::to_value));
    all.extend(d.ingresses.iter().map(serde_json::to_value));
    all.extend(d.gateway_routes.iter().map(serde_json::to_value));
    all.push(serde_json::to_value(&d.service_monitor));
    all.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_object_of_an_example_and_refuses_an_invalid_one() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/examples/homeserver-production.yaml"
        ))
        .expect("example");
        let out = render(&text, "chat").expect("renders");
        // Top-level kinds only (an HPA's target also says `kind: Deployment`, indented).
        let count = |kind: &str| {
            out.lines()
                .filter(|l| *l == format!("kind: {kind}"))
                .count()
        };
        for (kind, n) in [
            ("Deployment", 5),
            ("Service", 5),
            ("Job", 1),
            ("ServiceMonitor", 1),
        ] {
            assert_eq!(count(kind), n, "{kind}");
        }
        assert!(count("NetworkPolicy") > 0);
        // Homeservers sharing a NATS cluster keep apart.
        assert!(
            out.contains("value: mzchat-chat-"),
            "a bus prefix of its own"
        );
        let invalid = text.replace("origin: https://chat.example.org", "origin: ftp://chat");
        match render(&invalid, "chat") {
            Err(RenderError::Invalid { problems, .. }) => {
                assert!(
                    problems.iter().any(|p| p.contains("spec.origin")),
                    "{problems:?}"
                )
            }
            other => panic!("an ftp origin must be refused, got {:?}", other.map(|_| ())),
        }
        assert!(matches!(
            render("kind: Secret\n", "chat"),
            Err(RenderError::Empty)
        ));
    }
}
