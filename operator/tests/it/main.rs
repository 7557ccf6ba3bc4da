//! The operator's integration tests: one binary, a module per topic.

mod backlog;
mod crd_files;
