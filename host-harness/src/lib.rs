//! `spec-host`: a wasmtime host for the lattice component-spec plugin.
//!
//! The plugin (`guest/`, a WebAssembly component of the world
//! `lattice:spec/spec-plugin`) owns wasmCloud's component-spec logic: the
//! stored JSON, the link rules and the host-local link table. This crate
//! supplies its imports and runs it.
//!
//! Layout:
//! * [`model`] — the host's types for links, specs and reports (wasmCloud
//!   JSON); the wasmtime bindings stay private.
//! * [`backend`] — one async trait per plugin import (`KeyValue`,
//!   `ProviderNotify`) and a module per backend ([`backend::memory`]).
//! * [`plugin`] — engine, linker and loaded plugins ([`plugin::runtime`]);
//!   [`plugin::SpecHost`], the worker that calls an instance, enforces its
//!   memory cap and CPU budget and replaces it after a trap.
//! * [`serve`] — the lattice service: wasmCloud link control requests,
//!   status, hot swap of the plugin.
//! * [`error`] — the typed errors of each boundary.
//! * [`nats`] — JetStream KV and NATS delivery backends, following other
//!   hosts through the bucket, and a local nats-server.
//! * [`bundled`] — the plugin built with this crate, embedded in the binary.
//! * [`cli`] — the `spec-host` command line, and `demo`.

pub mod backend;
pub mod bundled;
pub mod cli;
pub mod error;
pub mod model;
pub mod nats;
pub mod plugin;
pub mod serve;

pub use error::{CallError, LoadError, SpecError};
pub use model::{ComponentSpecification, Link};
pub use plugin::{LoadedPlugin, PluginEngine, PluginLimits, SpecHost};
