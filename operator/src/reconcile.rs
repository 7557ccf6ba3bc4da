//! The reconcile loop: read -> validate -> build -> apply -> status. The pure stages live in
//! `validate`, `build`, `rollout` and `status`; this module sequences the API calls.

mod objects;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};
use serde_json::json;

use crate::apply::FIELD_MANAGER;
use crate::crd::{ConditionType, Homeserver};
use crate::status::{INVALID_SPEC, Outcome, Rollout, next_status};
use crate::validate::validate;

/// Between checks while a migration or rollout is under way (owned Jobs and Deployments also
/// wake the controller when they change).
const REQUEUE_PROGRESSING: Duration = Duration::from_secs(10);
/// Between checks of a settled, paused or invalid Homeserver: a spec edit wakes the controller
/// anyway, so this only catches drift.
const REQUEUE_SETTLED: Duration = Duration::from_secs(300);
/// Between backlog reads, for federation-sync scaled on its job backlog.
const REQUEUE_BACKLOG: Duration = Duration::from_secs(30);
/// After an API error.
const REQUEUE_ERROR: Duration = Duration::from_secs(30);
/// Events carry at most 1 kB of note.
const MAX_NOTE: usize = 1000;

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
}

impl Context {
    /// `instance` tells replicas apart in events (the pod name).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes api: {0}")]
    Kube(#[from] kube::Error),
}

impl Error {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "client",
        }
    }
}

pub async fn reconcile(hs: Arc<Homeserver>, ctx: Arc<Context>) -> Result<Action, Error> {
    // owner references let garbage collection delete everything; nothing to do here
    if hs.metadata.deletion_timestamp.is_some() || hs.metadata.namespace.is_none() {
        return Ok(Action::await_change());
    }
    if hs.spec.paused {
        write_status(&ctx, &hs, &Outcome::Paused).await?;
        return Ok(Action::requeue(REQUEUE_SETTLED));
    }
    let spec = match validate(&hs) {
        Ok(spec) => spec,
        Err(errors) => {
            let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
            report_invalid(&ctx, &hs, &messages).await;
            write_status(&ctx, &hs, &Outcome::InvalidSpec(messages)).await?;
            return Ok(Action::requeue(REQUEUE_SETTLED));
        }
    };
    let progress = objects::apply_all(&ctx.client, &hs, &spec).await?;
    let settled = progress.rollout == Rollout::Complete && progress.degraded.is_none();
    write_status(&ctx, &hs, &Outcome::Reconciled(Box::new(progress))).await?;
    let scales_on_backlog = matches!(
        spec.scaling(crate::service::Service::FederationSync),
        crate::validate::Scaling::Backlog { .. }
    );
    Ok(Action::requeue(if !settled {
        REQUEUE_PROGRESSING
    } else if scales_on_backlog {
        REQUEUE_BACKLOG
    } else {
        REQUEUE_SETTLED
    }))
}

pub fn error_policy(hs: Arc<Homeserver>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(
        homeserver = hs.metadata.name.as_deref().unwrap_or_default(),
        namespace = hs.metadata.namespace.as_deref().unwrap_or_default(),
        kind = error.kind(),
        error = %error,
        "reconcile failed"
    );
    Action::requeue(REQUEUE_ERROR)
}

/// Merge-patches the status subresource, only when it changed: an unchanged status would wake
/// this controller's own watch for nothing.
async fn write_status(ctx: &Context, hs: &Homeserver, outcome: &Outcome) -> Result<(), Error> {
    let now = Time(Timestamp::now());
    let status = next_status(hs.status.as_ref(), hs.metadata.generation, outcome, &now);
    if hs.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<Homeserver> = Api::namespaced(
        ctx.client.clone(),
        hs.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let patch = Patch::Merge(json!({ "status": status }));
    api.patch_status(
        hs.metadata.name.as_deref().unwrap_or_default(),
        &PatchParams::default(),
        &patch,
    )
    .await?;
    Ok(())
}

/// A Warning event with the validation messages, once per distinct set of messages (the
/// Degraded condition remembers the last). A failure to publish is logged, not retried: the
/// status says the same.
async fn report_invalid(ctx: &Context, hs: &Homeserver, messages: &[String]) {
    let note = messages.join("; ");
    let already = hs.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == ConditionType::Degraded.as_str()
                && c.reason == INVALID_SPEC
                && c.message == note
        })
    });
    if already {
        return;
    }
    let mut short = note;
    if short.len() > MAX_NOTE {
        let mut end = MAX_NOTE;
        while !short.is_char_boundary(end) {
            end -= 1;
        }
        short.truncate(end);
    }
    let event = Event {
        type_: EventType::Warning,
        reason: INVALID_SPEC.to_owned(),
        note: Some(short),
        action: "Validate".to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &hs.object_ref(&())).await {
        tracing::warn!(error = %error, "cannot publish the InvalidSpec event");
    }
}
