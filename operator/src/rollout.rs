//! Pure decisions of a version rollout: whether the migration Job has finished, and whether a
//! Deployment has fully moved to its current template (so the next service may move).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// The state of a Job from its status conditions (Complete / Failed, as the Job controller
/// sets them once it stops retrying).
pub fn job_state(job: &Job) -> JobState {
    let status = job.status.as_ref();
    let has = |kind: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
    };
    if has("Complete") || status.and_then(|s| s.succeeded).unwrap_or(0) > 0 {
        JobState::Succeeded
    } else if has("Failed") {
        JobState::Failed
    } else {
        JobState::Running
    }
}

/// The Deployment controller has seen the latest template and every wanted pod is updated,
/// ready and available, with no old pods left.
pub fn rolled_out(deployment: &Deployment) -> bool {
    let Some(status) = deployment.status.as_ref() else {
        return false;
    };
    let generation = deployment.metadata.generation.unwrap_or(0);
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    status.observed_generation.unwrap_or(0) >= generation
        && status.updated_replicas.unwrap_or(0) >= wanted
        && status.ready_replicas.unwrap_or(0) >= wanted
        && status.available_replicas.unwrap_or(0) >= wanted
        && status.replicas.unwrap_or(0) <= status.updated_replicas.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job(status: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j"}, "status": status})).expect("a Job")
    }

    fn deployment(generation: i64, replicas: i32, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("a Deployment")
    }

    #[test]
    fn a_job_without_a_final_condition_is_running() {
        assert_eq!(job_state(&job(json!({"active": 1}))), JobState::Running);
        assert_eq!(job_state(&Job::default()), JobState::Running);
    }

    #[test]
    fn a_complete_job_succeeded_and_a_failed_one_failed() {
        let complete =
            json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
        assert_eq!(job_state(&job(complete)), JobState::Succeeded);
        let failed = json!({"failed": 4, "conditions": [{"type": "Failed", "status": "True"}]});
        assert_eq!(job_state(&job(failed)), JobState::Failed);
    }

    #[test]
    fn a_deployment_whose_new_template_is_not_observed_is_not_rolled_out() {
        let status = json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2});
        assert!(!rolled_out(&deployment(2, 2, status)));
    }

    #[test]
    fn a_deployment_with_old_or_unready_pods_is_not_rolled_out() {
        let surging = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "readyReplicas": 3, "availableReplicas": 3});
        assert!(!rolled_out(&deployment(2, 2, surging)));
        let unready = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1});
        assert!(!rolled_out(&deployment(2, 2, unready)));
        assert!(!rolled_out(&deployment(1, 1, serde_json::Value::Null)));
    }

    #[test]
    fn a_deployment_with_every_pod_updated_and_ready_is_rolled_out() {
        let status = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2});
        assert!(rolled_out(&deployment(2, 2, status)));
    }
}
