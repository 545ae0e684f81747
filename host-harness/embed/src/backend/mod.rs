//! What the plugin's imports are backed by: one small async trait per import.
//!
//! * [`KeyValue`] backs `lattice:spec/keyvalue`. Its contract is JetStream
//!   KV's, so the NATS backend maps each method onto one JetStream call and
//!   the in-memory one behaves the same way (keys, revisions, tombstones).
//! * [`ProviderNotify`] backs `lattice:spec/provider-notify`.
//!
//! Backends live one per module: [`memory`] for tests and the demo.

mod error;
pub mod memory;
mod traits;

pub use error::{error_chain, BackendError, BoxError};
pub use spec_model::{Entry, NotifyError};
pub use traits::{check_key, KeyValue, ProviderNotify, Silent};
