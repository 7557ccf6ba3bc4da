//! The alert rules shipped in charts/mzchat/rules: valid (`promtool check rules`) and behaving as
//! their unit tests say (`promtool test rules`), and using only metrics a homeserver serves.

use std::{path::PathBuf, process::Command};

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/mzchat/rules")
}

fn promtool(args: &[&str]) -> (bool, String) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(rules_dir())
        .output()
        .expect("promtool (deploy/dev/services.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn alert_rules_are_valid_and_pass_their_unit_tests() {
    let (ok, out) = promtool(&["check", "rules", "mzchat.rules.yml"]);
    assert!(ok, "{out}");
    let (ok, out) = promtool(&["test", "rules", "rules.test.yml"]);
    assert!(ok, "{out}");
}

#[test]
fn alert_rules_use_only_served_metrics() {
    let rules = std::fs::read_to_string(rules_dir().join("mzchat.rules.yml")).expect("rules");
    let served: Vec<&str> = crate::scrape::EXPECTED.to_vec();
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("mzchat_") {
            assert!(
                served.contains(&word),
                "{word} is not a metric the scrape test sees"
            );
        }
    }
}

/// Families that are served but have no sample until their event happens.
const EVENTUAL: [&str; 1] = ["mzchat_outbox_publish_failures_total"];

/// Every dashboard query parses as PromQL (checked by promtool, as recording rules) and uses
/// only metrics a homeserver serves.
#[test]
fn dashboards_query_only_served_metrics_in_valid_promql() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../charts/mzchat/dashboards");
    let mut exprs = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dashboards") {
        let path = entry.expect("entry").path();
        let board: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        assert!(
            board["uid"]
                .as_str()
                .is_some_and(|u| u.starts_with("mzchat-")),
            "{path:?}"
        );
        for panel in board["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().expect("targets") {
                exprs.push(target["expr"].as_str().expect("expr").to_owned());
            }
        }
    }
    assert!(exprs.len() >= 20, "{} queries", exprs.len());
    let served: Vec<&str> = crate::scrape::EXPECTED
        .iter()
        .chain(&EVENTUAL)
        .copied()
        .collect();
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (n, expr) in exprs.iter().enumerate() {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("mzchat_") {
                assert!(served.contains(&word), "{word} in {expr}");
            }
        }
        let expr = expr.replace("$job", ".*").replace('\'', "''");
        rules.push_str(&format!(
            "      - record: dashboard_query_{n}\n        expr: '{expr}'\n"
        ));
    }
    let file = std::env::temp_dir().join(format!("mzchat-dashboards-{}.yml", std::process::id()));
    std::fs::write(&file, rules).expect("write");
    let (ok, out) = promtool(&["check", "rules", file.to_str().expect("path")]);
    std::fs::remove_file(&file).ok();
    assert!(ok, "{out}");
}
