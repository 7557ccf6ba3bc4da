//! The mzchat operator. Reconciling is a pipeline whose pure stages live here: `validate`
//! checks a Homeserver, `build` turns the valid spec into the objects to apply.

pub mod build;
pub mod crd;
pub mod service;
pub mod validate;

#[cfg(test)]
mod fixtures;
