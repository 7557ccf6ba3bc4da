//! The mzchat operator. Reconciling is a pipeline (`reconcile`): `validate` checks a
//! Homeserver, `build` turns the valid spec into the objects to apply, `apply` writes them,
//! `rollout` decides when the migration and each Deployment are done, and `status` computes
//! what to report. `leader` elects one replica to run the controller, `run` wires it up with
//! the `admin` listener and its `metrics`.

pub mod admin;
pub mod apply;
pub mod backlog;
pub mod build;
pub mod crd;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod render;
pub mod rollout;
pub mod run;
pub mod service;
pub mod status;
pub mod telemetry;
pub mod validate;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod mock;
