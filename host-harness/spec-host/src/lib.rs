//! `spec-host`: a wasmtime host for the lattice component-spec plugin.
//!
//! The plugin (`guest/`, a WebAssembly component of the world
//! `lattice:spec/spec-plugin`) owns wasmCloud's component-spec logic: the
//! stored JSON, the link rules and the host-local link table. This crate
//! supplies its imports and runs it.
//!
//! Data types (links, specs, errors, results) come from [`spec_model`],
//! shared with the plugin; re-exported here as [`model`].
//!
//! Layout:
//! * [`backend`] — one async trait per plugin import (`KeyValue`,
//!   `ProviderNotify`) and a module per backend ([`backend::memory`]).
//! * [`plugin`] — the contract's host side for any embedder
//!   ([`plugin::embed`], [`plugin::exports`]); engine and loaded builds
//!   ([`plugin::runtime`]); [`plugin::SpecHost`], the engine: a pool of
//!   request instances and one table owner, every call under a memory cap,
//!   CPU budget, deadline and import cap, instances replaced after a fault.
//! * [`serve`] — the lattice service: wasmCloud link control requests,
//!   status, hot swap of the plugin.
//! * [`rollout`] — builds kept in the lattice, shadowed on live traffic,
//!   rolled across the hosts and rolled back by themselves.
//! * [`ui`] — `spec-host ui`: the lattice in the browser, live.
//! * [`error`] — the typed errors of each boundary.
//! * [`nats`] — JetStream KV and NATS delivery backends, following other
//!   hosts through the bucket, and a local nats-server.
//! * [`bundled`] — the plugin built with this crate, embedded in the binary.
//! * [`cli`] — the `spec-host` command line, and `demo`.

pub mod backend;
pub mod bundled;
pub mod cli;
pub mod error;
pub mod nats;
pub mod plugin;
pub mod rollout;
pub mod serve;
pub mod ui;

pub use error::{CallError, LoadError, SpecError};
pub use plugin::{LoadedPlugin, PluginEngine, PluginLimits, SpecHost};
pub use spec_model as model;
pub use spec_model::{ComponentSpecification, Link};
