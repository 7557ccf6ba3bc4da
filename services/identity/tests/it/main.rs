//! Integration tests of the identity service over both backends.

mod harness;

mod accounts;
mod federation;
mod keys;
mod limits;
mod mailbox;
mod outbox;
mod sessions;
