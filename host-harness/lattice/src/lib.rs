//! `spec-lattice`: spec-host as a service of a wasmCloud lattice.
//!
//! * [`serve`] — answers wasmCloud's link and config control requests with
//!   the plugin, follows the spec bucket, delivers changes to local
//!   providers, reports status, swaps the plugin live, and guards links
//!   acknowledged beside wasmCloud v1.9 hosts.
//! * [`rollout`] — builds kept in the lattice, shadowed on live traffic,
//!   rolled across the hosts and rolled back by themselves.
//! * [`ui`] — `spec-host ui`: the lattice in the browser, live.
//! * [`admin`] — `serve --admin-listen`: `/livez`, `/readyz` and
//!   `/metrics`, and the metrics' OTLP export.
//!
//! Engine and backends come from `spec-embed` and `spec-nats`.

pub mod admin;
pub mod rollout;
pub mod serve;
pub mod ui;
