//! The operator's integration tests: one binary, a module per topic.

mod crd_files;
