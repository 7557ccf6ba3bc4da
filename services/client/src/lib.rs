//! mzchat client library. Every resource lives on exactly one server, its origin; the client
//! keeps one transport per origin and sends each call to the origin of the resource it touches
//! (PROTOCOL.md section 4). Identity keys (root K_id and the device key) sign device
//! certificates and login proofs locally; the root key never leaves this machine.

pub mod invites;
pub mod keys;
pub mod media;
pub mod session;
pub mod statements;
pub mod transport;

pub use keys::{KeyStore, LocalIdentity};
pub use session::{Client, ClientError, StoredSession};
pub use transport::Transports;
